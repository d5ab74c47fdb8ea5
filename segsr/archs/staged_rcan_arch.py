"""RCAN (Zhang et al., ECCV 2018) from basicsr, with a stage hook after every residual group."""

from collections.abc import Sequence

from basicsr.archs.rcan_arch import RCAN
from basicsr.utils.registry import ARCH_REGISTRY

from segsr.archs.staged import StagedResidualBody, check_upscale


@ARCH_REGISTRY.register()
class StagedRCAN(StagedResidualBody, RCAN):
    """basicsr's ``RCAN`` (same options, modules and checkpoint keys) as a staged backbone.

    One stage per residual group (``num_stages`` = ``num_group``); the hook runs after each group,
    before ``conv_after_body``. Without a hook the output equals ``RCAN``'s.
    """

    def __init__(self, num_in_ch: int = 3, num_out_ch: int = 3, num_feat: int = 64, num_group: int = 10,
                 num_block: int = 16, squeeze_factor: int = 16, upscale: int = 4, res_scale: float = 1,
                 img_range: float = 255.0, rgb_mean: Sequence[float] = (0.4488, 0.4371, 0.4040)):
        check_upscale(upscale, 'StagedRCAN')
        super().__init__(num_in_ch, num_out_ch, num_feat, num_group, num_block, squeeze_factor, upscale, res_scale,
                         img_range, rgb_mean)
        self.setup_stages(upscale, num_feat, num_group, num_group)
