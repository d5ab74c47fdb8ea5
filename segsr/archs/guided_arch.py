"""SeG-SR semantic guidance on basicsr's conv and Swin backbones and on the Sentinel-2 reference network: SEGSR with
a fixed staged backbone.

``backbone_checkpoint`` takes a published checkpoint of the unguided network (basicsr key names).
"""

from basicsr.utils.registry import ARCH_REGISTRY

from segsr.archs.segsr_arch import SEGSR


@ARCH_REGISTRY.register()
class GuidedEDSR(SEGSR):
    """SEGSR whose ``backbone`` options are those of ``StagedEDSR`` (``backbone.type`` may be left out)."""

    backbone_type = 'StagedEDSR'
    backbone_fixed = True


@ARCH_REGISTRY.register()
class GuidedRCAN(SEGSR):
    """SEGSR whose ``backbone`` options are those of ``StagedRCAN`` (``backbone.type`` may be left out)."""

    backbone_type = 'StagedRCAN'
    backbone_fixed = True


@ARCH_REGISTRY.register()
class GuidedSwinIR(SEGSR):
    """SEGSR whose ``backbone`` options are those of ``StagedSwinIR`` (``backbone.type`` may be left out)."""

    backbone_type = 'StagedSwinIR'
    backbone_fixed = True


@ARCH_REGISTRY.register()
class GuidedS2Reference(SEGSR):
    """SEGSR on ``S2ReferenceNet`` (``backbone`` takes its options): the coarse Sentinel-2 bands brought to the
    reference grid with the SFEM's guidance. It works on one grid, so ``upscale`` is 1: CLIP sees the stack at
    its own size, through ``sfem.rgb_bands`` (B04, B03, B02: ``[1, 2, 3]`` on the stack B04, B03, B02, B08, ...)
    and ``sfem.display_range`` (the reflectance shown as black and white)."""

    backbone_type = 'S2ReferenceNet'
    backbone_fixed = True

    def __init__(self, upscale: int = 1, **options):
        super().__init__(upscale=upscale, **options)
