"""The Sentinel-2 reference network: the coarser bands of a product brought to the 10 m grid, guided by the 10 m
bands (B02, B03, B04, B08), which see the same ground at twice the resolution.

The input is one stack on the fine grid: the reference bands first, then the ``num_target`` coarser bands
resampled onto that grid (``segsr-infer --resample`` does it by cubic convolution; the Wald pairs of
:mod:`segsr.data.s2_wald` by MATLAB bicubic, the same kernel). The output is that stack with the coarse bands
sharpened by a residual network on the whole stack (the design of DSen2, Lanaras et al., 2018); the reference
bands pass through exactly. It works on one grid, so ``upscale`` is 1.
"""

import torch
from basicsr.archs.arch_util import ResidualBlockNoBN, make_layer
from basicsr.utils.registry import ARCH_REGISTRY
from torch import nn

from segsr.utils.errors import SegSRError


@ARCH_REGISTRY.register()
class S2ReferenceNet(nn.Module):
    """``num_in_ch`` bands in, the same out; the last ``num_target`` of them get a learned residual."""

    def __init__(self, num_in_ch: int = 10, num_target: int = 6, num_feat: int = 64, num_block: int = 6,
                 res_scale: float = 0.1, upscale: int = 1):
        super().__init__()
        if upscale != 1:
            raise SegSRError(f'S2ReferenceNet works on one grid: upscale must be 1, not {upscale}; resample the '
                             'coarse bands onto the fine grid first (segsr-infer --resample)')
        if not 0 < num_target < num_in_ch:
            raise SegSRError(f'S2ReferenceNet: num_target {num_target} must leave reference bands among the '
                             f'{num_in_ch} input bands; give 0 < num_target < num_in_ch')
        self.num_target = num_target
        self.head = nn.Sequential(nn.Conv2d(num_in_ch, num_feat, 3, padding=1), nn.ReLU(inplace=True))
        self.body = make_layer(ResidualBlockNoBN, num_block, num_feat=num_feat, res_scale=res_scale)
        self.tail = nn.Conv2d(num_feat, num_target, 3, padding=1)
        nn.init.zeros_(self.tail.weight)  # it starts as the resampled input and learns what the reference adds
        nn.init.zeros_(self.tail.bias)

    def forward(self, stack: torch.Tensor) -> torch.Tensor:
        reference, coarse = stack[:, :-self.num_target], stack[:, -self.num_target:]
        return torch.cat([reference, coarse + self.tail(self.body(self.head(stack)))], dim=1)
