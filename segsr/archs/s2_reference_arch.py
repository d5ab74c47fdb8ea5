"""The Sentinel-2 reference network: the coarser bands of a product brought to the 10 m grid, guided by the 10 m
bands (B02, B03, B04, B08), which see the same ground at twice the resolution.

The input is one stack on the fine grid: the reference bands first, then the ``num_target`` coarser bands
resampled onto that grid (``segsr-infer --resample`` does it by cubic convolution; the Wald pairs of
:mod:`segsr.data.s2_wald` by MATLAB bicubic, the same kernel). The output is that stack with the coarse bands
sharpened by a residual network on the whole stack (the design of DSen2, Lanaras et al., 2018); the reference
bands pass through exactly. It works on one grid, so ``upscale`` is 1.

It is a staged backbone: ``forward(stack, stage_hook)`` calls the hook after each of ``num_stages`` runs of
residual blocks, which is where :class:`~segsr.archs.guided_arch.GuidedS2Reference` modulates the features by the
SFEM's guidance on the RGB bands.
"""

import torch
from basicsr.archs.arch_util import ResidualBlockNoBN, make_layer
from basicsr.utils.registry import ARCH_REGISTRY
from torch import nn

from segsr.nn.info import NetworkInfo
from segsr.nn.staged import StageHook, call_stage_hook, split_stages
from segsr.utils.errors import SegSRError


@ARCH_REGISTRY.register()
class S2ReferenceNet(nn.Module):
    """``num_in_ch`` bands in, the same out; the last ``num_target`` of them get a learned residual.

    ``num_stages`` splits the ``num_block`` residual blocks into near-equal runs for the stage hook (default: one
    stage per block)."""

    def __init__(self, num_in_ch: int = 10, num_target: int = 6, num_feat: int = 64, num_block: int = 6,
                 res_scale: float = 0.1, upscale: int = 1, num_stages: int | None = None):
        super().__init__()
        if upscale != 1:
            raise SegSRError(f'S2ReferenceNet works on one grid: upscale must be 1, not {upscale}; resample the '
                             'coarse bands onto the fine grid first (segsr-infer --resample)')
        if not 0 < num_target < num_in_ch:
            raise SegSRError(f'S2ReferenceNet: num_target {num_target} must leave reference bands among the '
                             f'{num_in_ch} input bands; give 0 < num_target < num_in_ch')
        self.num_target = num_target
        num_stages = num_block if num_stages is None else num_stages
        stage_ends = split_stages(num_block, num_stages, 'S2ReferenceNet')
        self._stage_after_block = {end: stage for stage, end in enumerate(stage_ends)}
        self.network_info = NetworkInfo(scale=1, in_chans=num_in_ch, out_chans=num_in_ch, num_stages=num_stages,
                                        num_features=num_feat)
        self.head = nn.Sequential(nn.Conv2d(num_in_ch, num_feat, 3, padding=1), nn.ReLU(inplace=True))
        self.body = make_layer(ResidualBlockNoBN, num_block, num_feat=num_feat, res_scale=res_scale)
        self.tail = nn.Conv2d(num_feat, num_target, 3, padding=1)
        nn.init.zeros_(self.tail.weight)  # it starts as the resampled input and learns what the reference adds
        nn.init.zeros_(self.tail.bias)

    def forward(self, stack: torch.Tensor, stage_hook: StageHook | None = None) -> torch.Tensor:
        feat = self.head(stack)
        for index, block in enumerate(self.body):
            feat = block(feat)
            stage = self._stage_after_block.get(index)
            if stage_hook is not None and stage is not None:
                feat = call_stage_hook(stage_hook, stage, feat, 'S2ReferenceNet')
        reference, coarse = stack[:, :-self.num_target], stack[:, -self.num_target:]
        return torch.cat([reference, coarse + self.tail(feat)], dim=1)
