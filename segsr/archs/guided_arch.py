"""SeG-SR semantic guidance on basicsr's conv and Swin backbones: SEGSR with a fixed staged backbone.

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
