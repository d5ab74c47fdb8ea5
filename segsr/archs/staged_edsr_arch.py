"""EDSR (Lim et al., CVPRW 2017) from basicsr, with a stage hook between groups of residual blocks."""

from collections.abc import Sequence

from basicsr.archs.edsr_arch import EDSR
from basicsr.utils.registry import ARCH_REGISTRY

from segsr.archs.staged import StagedResidualBody, check_upscale


@ARCH_REGISTRY.register()
class StagedEDSR(StagedResidualBody, EDSR):
    """basicsr's ``EDSR`` (same options, modules and checkpoint keys) as a staged backbone.

    EDSR's body is one run of ``num_block`` residual blocks; it is split into ``num_stages``
    near-equal consecutive groups (default 4: 16 blocks -> 4 x 4, 32 -> 4 x 8), and the stage hook
    runs after each group, before ``conv_after_body``. Without a hook the output equals ``EDSR``'s.
    """

    def __init__(self, num_in_ch: int = 3, num_out_ch: int = 3, num_feat: int = 64, num_block: int = 16,
                 upscale: int = 4, res_scale: float = 1, img_range: float = 255.0,
                 rgb_mean: Sequence[float] = (0.4488, 0.4371, 0.4040), num_stages: int = 4):
        check_upscale(upscale, 'StagedEDSR')
        super().__init__(num_in_ch, num_out_ch, num_feat, num_block, upscale, res_scale, img_range, rgb_mean)
        self.setup_stages(upscale, num_feat, num_block, num_stages)
