"""Layers of the guidance path: prompt conditioning and fusion (SLM), map upsampling, channel LayerNorm (LMM)."""

import torch
import torch.nn as nn
import torch.nn.functional as F


class GlobalPromptConditioner(nn.Module):
    """Conditions the global prompt on the image: meta-net, FiLM ``p * (1 + gamma) + beta``, then a linear.

    The meta-net bottleneck (C/16 units) uses GELU: with few units a ReLU can go dead for a whole batch.
    """

    def __init__(self, dim: int):
        super().__init__()
        hidden = max(1, dim // 16)
        self.meta_net = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))
        self.film = nn.Linear(dim, 2 * dim)
        self.out = nn.Linear(dim, dim)

    def forward(self, prompt: torch.Tensor, image_embedding: torch.Tensor) -> torch.Tensor:
        gamma, beta = self.film(self.meta_net(image_embedding)).chunk(2, dim=-1)
        return self.out(prompt * (1 + gamma) + beta)


class GatedFusion(nn.Module):
    """e = W_out(sigmoid(W_x p_local) * W_y p_global)."""

    def __init__(self, dim: int):
        super().__init__()
        self.gate = nn.Linear(dim, dim)
        self.value = nn.Linear(dim, dim)
        self.out = nn.Linear(dim, dim)

    def forward(self, local: torch.Tensor, global_: torch.Tensor) -> torch.Tensor:
        return self.out(torch.sigmoid(self.gate(local)) * self.value(global_))


class MapUpsampler(nn.Module):
    """Learnable integer pixel-shuffle upsampling, then bilinear resizing to the exact feature size.

    The integer factor ``ceil(patch / scale)`` brings the patch grid to at least the LR size for
    every scale (also where ``patch / scale`` is not a power of two, e.g. x3); the conv starts as
    nearest-neighbour replication so the maps are meaningful from the first step.
    """

    def __init__(self, channels: int, factor: int):
        super().__init__()
        self.factor = factor
        if factor > 1:
            self.expand = nn.Conv2d(channels, channels * factor**2, 3, padding=1)
            self.shuffle = nn.PixelShuffle(factor)
            with torch.no_grad():
                self.expand.weight.zero_()
                self.expand.bias.zero_()
                for c in range(channels):
                    self.expand.weight[c * factor**2:(c + 1) * factor**2, c, 1, 1] = 1

    def forward(self, maps: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        if self.factor > 1:
            maps = self.shuffle(self.expand(maps))
        if tuple(maps.shape[-2:]) != tuple(size):
            maps = F.interpolate(maps, size=size, mode='bilinear', align_corners=False)
        return maps


class ChannelLayerNorm(nn.LayerNorm):
    """LayerNorm over the channels of an NCHW tensor (as a transformer body normalises its tokens)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.layer_norm(x.permute(0, 2, 3, 1), self.normalized_shape, self.weight, self.bias,
                            self.eps).permute(0, 3, 1, 2)
