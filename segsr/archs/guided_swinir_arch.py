"""SeG-SR semantic guidance on SwinIR: SEGSR with the staged SwinIR backbone."""

from basicsr.utils.registry import ARCH_REGISTRY

from segsr.archs.segsr_arch import SEGSR


@ARCH_REGISTRY.register()
class GuidedSwinIR(SEGSR):
    """SEGSR whose ``backbone`` options are those of ``StagedSwinIR`` (``backbone.type`` may be left out).

    ``backbone_checkpoint`` takes a published SwinIR checkpoint (basicsr key names).
    """

    backbone_type = 'StagedSwinIR'
    backbone_fixed = True
