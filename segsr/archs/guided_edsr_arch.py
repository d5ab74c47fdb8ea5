"""SeG-SR semantic guidance on EDSR: SEGSR with the staged EDSR backbone."""

from basicsr.utils.registry import ARCH_REGISTRY

from segsr.archs.segsr_arch import SEGSR


@ARCH_REGISTRY.register()
class GuidedEDSR(SEGSR):
    """SEGSR whose ``backbone`` options are those of ``StagedEDSR`` (``backbone.type`` may be left out).

    ``backbone_checkpoint`` takes a published EDSR checkpoint (basicsr key names).
    """

    backbone_type = 'StagedEDSR'
    backbone_fixed = True
