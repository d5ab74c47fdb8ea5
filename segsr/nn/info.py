"""What a network states about itself: scale, channels, padding, stage hook, guidance maps.

Callers (inference, compilation, guided networks, scripts) read a :class:`NetworkInfo` instead of
probing a forward pass, guessing from option names or inspecting signatures. basicsr's own archs
(EDSR, RRDBNet...) state nothing; :func:`describe` measures them once.
"""

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import torch
from torch import nn

from segsr.utils.errors import SegSRError

SUPPORTED_SCALES = (2, 3, 4, 8)
GUIDED_SCALES = (1, *SUPPORTED_SCALES)
"""Guidance maps also fit a network that works on one grid (scale 1: the Sentinel-2 reference network)."""
PROBE_SIZE = 16


@dataclass(frozen=True)
class NetworkInfo:
    """``scale``: output size over input size. ``in_chans``/``out_chans``: bands in and out (any count; SR
    networks output the bands they take). ``pad_multiple``: the network reflect-pads its input to this
    multiple itself (1: any size). ``num_stages``/``num_features``: ``forward(x, stage_hook)`` calls the hook
    after each stage with features of that many channels (0: no stage hook). ``map_stages``: channels of
    each guidance map ``forward(x, return_maps=True)`` returns, one per stage (empty: the network makes none)."""

    scale: int
    in_chans: int
    out_chans: int
    pad_multiple: int = 1
    num_stages: int = 0
    num_features: int = 0
    map_stages: tuple[int, ...] = ()

    @property
    def map_channels(self) -> int:
        return sum(self.map_stages)


@runtime_checkable
class DescribedNetwork(Protocol):
    network_info: NetworkInfo


def check_scale(scale: int, arch: str, supported: tuple[int, ...] = SUPPORTED_SCALES) -> None:
    """The scales every network here builds (basicsr's ``Upsample`` and the guidance maps)."""
    if scale not in supported:
        raise SegSRError(f'{arch} upscale {scale} is not supported; use one of {list(supported)}')


def describe(network: nn.Module) -> NetworkInfo:
    """The network's own :class:`NetworkInfo`, or one measured for a network that states none."""
    if isinstance(network, DescribedNetwork):
        return network.network_info
    return measure(network)


@torch.inference_mode()
def measure(network: nn.Module) -> NetworkInfo:
    """Input channels from the first convolution, scale and output channels from one small forward pass."""
    first_conv = next((m for m in network.modules() if isinstance(m, nn.Conv2d)), None)
    name = type(network).__name__
    if first_conv is None:
        raise SegSRError(f'{name} has no convolution to read its input channels from; give it a network_info')
    probe = torch.zeros(1, first_conv.in_channels, PROBE_SIZE, PROBE_SIZE, device=first_conv.weight.device,
                        dtype=first_conv.weight.dtype)
    out = network(probe)
    scale = out.shape[-1] // PROBE_SIZE
    if scale < 1 or tuple(out.shape[-2:]) != (PROBE_SIZE * scale,) * 2:
        raise SegSRError(f'{name} output {tuple(out.shape)} for a {PROBE_SIZE}px input is not an integer upscale')
    return NetworkInfo(scale=scale, in_chans=first_conv.in_channels, out_chans=out.shape[1])
