"""Building blocks of staged SR backbones: the stage-hook call and the stage split of a residual body.

A staged backbone runs ``feat = stage_hook(i, feat)`` after each body stage ``i`` with image-shaped
features (B, num_features, H, W); guided networks (SEGSR) modulate the features there.
"""

from collections.abc import Callable

import torch

from segsr.nn.band_mean import register_band_mean
from segsr.nn.info import NetworkInfo
from segsr.utils.errors import SegSRError

StageHook = Callable[[int, torch.Tensor], torch.Tensor]


def call_stage_hook(stage_hook: StageHook, stage: int, feat: torch.Tensor, arch: str) -> torch.Tensor:
    """Run the hook and insist on a tensor of the features' shape, which the rest of the body needs."""
    out = stage_hook(stage, feat)
    if not isinstance(out, torch.Tensor) or out.shape != feat.shape:
        got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise SegSRError(
            f'{arch} stage_hook returned {got} at stage {stage}; return a tensor of shape {tuple(feat.shape)}'
        )
    return out


def split_stages(num_blocks: int, num_stages: int, arch: str) -> tuple[int, ...]:
    """Indices of the last block of each stage: ``num_blocks`` split into ``num_stages`` near-equal runs."""
    if not 1 <= num_stages <= num_blocks:
        raise SegSRError(f'{arch} num_stages {num_stages} must be between 1 and its {num_blocks} body blocks; '
                         'change num_stages')
    return tuple((stage + 1) * num_blocks // num_stages - 1 for stage in range(num_stages))


class StagedResidualBody:
    """Stage-hook forward for basicsr's conv SR nets (EDSR, RCAN): ``conv_first``, a ``body`` of blocks,
    ``conv_after_body`` plus the long skip, ``upsample``, ``conv_last``.

    Mixed into a subclass of the basicsr class, whose modules (and parameter names) it reuses;
    ``stage_ends`` holds the index of each stage's last body block.
    """

    stage_ends: tuple[int, ...]

    def setup_stages(self, upscale: int, num_feat: int, num_blocks: int, num_stages: int,
                     mean: tuple[float, ...]) -> None:
        """The staged-backbone attributes, set after basicsr's constructor has built the modules.

        Convolutions take any input size: ``pad_multiple`` is 1. ``mean`` has one value per band."""
        register_band_mean(self, mean)
        self.network_info = NetworkInfo(scale=upscale, in_chans=self.conv_first.in_channels,
                                        out_chans=self.conv_last.out_channels, num_stages=num_stages,
                                        num_features=num_feat)
        self.stage_ends = split_stages(num_blocks, num_stages, type(self).__name__)
        self._stage_after_block = {end: stage for stage, end in enumerate(self.stage_ends)}

    def forward(self, x: torch.Tensor, stage_hook: StageHook | None = None) -> torch.Tensor:
        mean = self.mean.to(x.dtype)
        feat = self.conv_first((x - mean) * self.img_range)
        body = feat
        for index, block in enumerate(self.body):
            body = block(body)
            stage = self._stage_after_block.get(index)
            if stage_hook is not None and stage is not None:
                body = call_stage_hook(stage_hook, stage, body, type(self).__name__)
        out = self.conv_last(self.upsample(self.conv_after_body(body) + feat))
        return out / self.img_range + mean
