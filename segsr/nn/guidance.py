"""Layers of the guidance path: prompt conditioning and fusion (SLM), map upsampling, channel LayerNorm (LMM)."""

import torch
import torch.nn as nn
import torch.nn.functional as F


class GlobalPromptConditioner(nn.Module):
    """Conditions the global prompt on the image: meta-net, FiLM ``p * (1 + gamma) + beta``, then a linear.

    The meta-net bottleneck (C/16 units) uses GELU: with few units a ReLU can go dead for a whole batch.
    ``relu`` and ``gamma_only`` (FiLM as ``gamma * p + beta``) reproduce the published code.
    """

    def __init__(self, dim: int, relu: bool = False, gamma_only: bool = False):
        super().__init__()
        hidden = max(1, dim // 16)
        activation = nn.ReLU() if relu else nn.GELU()
        self.meta_net = nn.Sequential(nn.Linear(dim, hidden), activation, nn.Linear(hidden, dim))
        self.film = nn.Linear(dim, 2 * dim)
        self.out = nn.Linear(dim, dim)
        self.gamma_offset = 0.0 if gamma_only else 1.0

    def forward(self, prompt: torch.Tensor, image_embedding: torch.Tensor) -> torch.Tensor:
        gamma, beta = self.film(self.meta_net(image_embedding)).chunk(2, dim=-1)
        return self.out(prompt * (self.gamma_offset + gamma) + beta)


class GatedFusion(nn.Module):
    """e = W_out(sigmoid(W_x p_local) * W_y p_global)."""

    def __init__(self, dim: int):
        super().__init__()
        self.gate = nn.Linear(dim, dim)
        self.value = nn.Linear(dim, dim)
        self.out = nn.Linear(dim, dim)

    def forward(self, local: torch.Tensor, global_: torch.Tensor) -> torch.Tensor:
        return self.out(torch.sigmoid(self.gate(local)) * self.value(global_))


class PerStageFusion(nn.Module):
    """One :class:`GatedFusion` per SR stage, as the published code has; stage-major local prompts."""

    def __init__(self, dim: int, num_stages: int):
        super().__init__()
        self.stages = nn.ModuleList(GatedFusion(dim) for _ in range(num_stages))

    def forward(self, local: torch.Tensor, global_: torch.Tensor) -> torch.Tensor:
        """(B, num_stages * K, C) local and (B, 1, C) global prompts -> fused (B, num_stages * K, C)."""
        chunks = local.chunk(len(self.stages), dim=1)
        return torch.cat([fusion(chunk, global_) for fusion, chunk in zip(self.stages, chunks, strict=True)], dim=1)


def replicating_conv(channels: int, factor: int) -> nn.Conv2d:
    """A 3x3 conv to ``channels * factor**2`` channels that, followed by a pixel shuffle, repeats each pixel."""
    conv = nn.Conv2d(channels, channels * factor**2, 3, padding=1)
    with torch.no_grad():
        conv.weight.zero_()
        conv.bias.zero_()
        for c in range(channels):
            conv.weight[c * factor**2:(c + 1) * factor**2, c, 1, 1] = 1
    return conv


def prime_factors(n: int) -> list[int]:
    factors, p = [], 2
    while n > 1:
        while n % p == 0:
            factors.append(p)
            n //= p
        p += 1
    return factors


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
            self.expand = replicating_conv(channels, factor)
            self.shuffle = nn.PixelShuffle(factor)

    def forward(self, maps: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        if self.factor > 1:
            maps = self.shuffle(self.expand(maps))
        if tuple(maps.shape[-2:]) != tuple(size):
            maps = F.interpolate(maps, size=size, mode='bilinear', align_corners=False)
        return maps


class StageMapUpsampler(nn.Module):
    """One stage's map upsampler as published: conv 3x3 + pixel shuffle steps, then bilinear resizing.

    The published code chains 2x steps (``patch / scale`` a power of two only); here the integer
    factor ``ceil(patch / scale)`` is split into prime steps (x3 at patch 16: a 2x and a 3x step), so
    every scale works and powers of two give the published chain. Steps start as pixel replication.
    """

    def __init__(self, channels: int, factor: int):
        super().__init__()
        steps = []
        for step in prime_factors(factor):
            steps += [replicating_conv(channels, step), nn.PixelShuffle(step)]
        self.steps = nn.Sequential(*steps)

    def forward(self, maps: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        maps = self.steps(maps)
        if tuple(maps.shape[-2:]) != tuple(size):
            maps = F.interpolate(maps, size=size, mode='bilinear', align_corners=False)
        return maps


class PerStageMapUpsampler(nn.Module):
    """One :class:`StageMapUpsampler` per SR stage over that stage's ``channels`` map channels."""

    def __init__(self, channels: int, factor: int, num_stages: int):
        super().__init__()
        self.channels = channels
        self.stages = nn.ModuleList(StageMapUpsampler(channels, factor) for _ in range(num_stages))

    def forward(self, maps: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        chunks = maps.split(self.channels, dim=1)
        return torch.cat([up(chunk, size) for up, chunk in zip(self.stages, chunks, strict=True)], dim=1)


class ChannelLayerNorm(nn.LayerNorm):
    """LayerNorm over the channels of an NCHW tensor (as a transformer body normalises its tokens)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.layer_norm(x.permute(0, 2, 3, 1), self.normalized_shape, self.weight, self.bias,
                            self.eps).permute(0, 3, 1, 2)
