"""SeG-SR semantic guidance on RCAN: SEGSR with the staged RCAN backbone."""

from basicsr.utils.registry import ARCH_REGISTRY

from segsr.archs.segsr_arch import SEGSR


@ARCH_REGISTRY.register()
class GuidedRCAN(SEGSR):
    """SEGSR whose ``backbone`` options are those of ``StagedRCAN`` (``backbone.type`` may be left out).

    ``backbone_checkpoint`` takes a published RCAN checkpoint (basicsr key names).
    """

    backbone_type = 'StagedRCAN'
    backbone_fixed = True
