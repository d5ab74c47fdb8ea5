"""Geometric self-ensemble (the "+" rows of SR tables): the mean output over the 8 flips and rotations.

Each transformed input goes through the whole network, so a guided network recomputes its guidance
for every transform; outputs (and guidance maps) are transformed back before averaging. Wrapping the
network, rather than the code that calls it, makes tiling, autocast and batching work unchanged.
"""

from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from segsr.nn.info import NetworkInfo, describe

# (mirror left-right, quarter turns): the dihedral group of the square.
TRANSFORMS = tuple((mirror, turns) for mirror in (False, True) for turns in range(4))
PROTOCOL_TEXT = 'x8 self-ensemble'


def transform(x: torch.Tensor, mirror: bool, turns: int) -> torch.Tensor:
    x = x.flip(-1) if mirror else x
    return torch.rot90(x, turns, dims=(-2, -1))


def untransform(y: torch.Tensor, mirror: bool, turns: int) -> torch.Tensor:
    y = torch.rot90(y, -turns, dims=(-2, -1))
    return y.flip(-1) if mirror else y


def ensemble_mean_and_spread(forward: Callable[[torch.Tensor], torch.Tensor],
                             x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and per-pixel spread (standard deviation, per channel) of the 8 outputs; the spread says where
    the network's answer depends on the orientation it was shown, a sign of uncertainty."""
    outputs = torch.stack([untransform(forward(transform(x, mirror, turns)), mirror, turns)
                           for mirror, turns in TRANSFORMS])
    return outputs.mean(0), outputs.std(0, correction=0)


def ensemble_mean(forward: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """Mean of ``forward`` over the 8 transforms of ``x`` (B, C, H, W), each mapped back to ``x``'s frame."""
    total = None
    for mirror, turns in TRANSFORMS:
        out = untransform(forward(transform(x, mirror, turns)), mirror, turns)
        total = out if total is None else total + out
    return total / len(TRANSFORMS)


def ensemble_arrays(run: Callable[[np.ndarray], np.ndarray], tiles: np.ndarray) -> np.ndarray:
    """:func:`ensemble_mean` for a runner of numpy batches (an onnxruntime session), e.g. ``segsr-infer --onnx``."""
    def forward(x: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(run(np.ascontiguousarray(x.numpy()))))

    return ensemble_mean(forward, torch.from_numpy(np.ascontiguousarray(tiles))).numpy()


class SelfEnsemble(nn.Module):
    """``network`` averaged over the 8 flips and rotations of its input."""

    def __init__(self, network: nn.Module):
        super().__init__()
        self.network = network

    @property
    def network_info(self) -> NetworkInfo:
        """The wrapped network's: the ensemble changes neither scale, channels nor maps."""
        return describe(self.network)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return ensemble_mean(self.network, x)


class GuidedSelfEnsemble(SelfEnsemble):
    """As :class:`SelfEnsemble`, also averaging the guidance maps of ``forward(x, return_maps=True)``.

    Maps may cover the network's padded input; each is cropped to its transformed input before it is
    transformed back, so the averaged maps cover ``x`` exactly.
    """

    def forward(self, x: torch.Tensor, return_maps: bool = False):
        if not return_maps:
            return super().forward(x)
        images, stage_maps = [], []
        for mirror, turns in TRANSFORMS:
            moved = transform(x, mirror, turns)
            image, maps = self.network(moved, return_maps=True)
            images.append(untransform(image, mirror, turns))
            height, width = moved.shape[-2:]
            stage_maps.append([untransform(m[..., :height, :width], mirror, turns) for m in maps])
        mean_maps = [torch.stack(per_stage).mean(0) for per_stage in zip(*stage_maps, strict=True)]
        return torch.stack(images).mean(0), mean_maps


def with_self_ensemble(network: nn.Module) -> SelfEnsemble:
    """The ensemble that also averages guidance maps where the network makes them."""
    return GuidedSelfEnsemble(network) if describe(network).map_channels else SelfEnsemble(network)
