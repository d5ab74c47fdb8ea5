"""Consistency with the input: does the output, degraded again, give back the LR it came from?

No reference is needed, so it also speaks for scenes without HR. The degradation is the dataset's own
(:func:`segsr.degradations.bicubic.bicubic_downscale`, MATLAB-style bicubic). :func:`project_consistent` is the
exact correction: the closest image (least squares) whose degradation is the input.
"""

from collections.abc import Callable
from functools import lru_cache

import numpy as np
import torch
from basicsr.utils.matlab_functions import imresize

from segsr.degradations.bicubic import bicubic_downscale
from segsr.metrics.spectral import spectral_angle_degrees
from segsr.nn.info import NetworkInfo, describe


def psnr(a: np.ndarray, b: np.ndarray, peak: float = 1.0) -> float:
    """PSNR in dB of two float arrays on a ``peak``-high scale; inf when they are equal."""
    mse = float(np.mean((np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)) ** 2))
    return float('inf') if mse == 0 else 10 * np.log10(peak ** 2 / mse)


def lr_consistency(output: np.ndarray, lr: np.ndarray, scale: int,
                   to_physical: Callable[[np.ndarray], np.ndarray] | None = None) -> dict[str, float]:
    """PSNR, MAE and spectral angle of the degraded ``output`` against ``lr`` (float HWC, values in [0, 1]).

    ``to_physical`` maps those values to physical units (reflectance, radiance) for the MAE; without it
    the MAE is in the image's own [0, 1] units. The spectral angle needs 3 or more bands (NaN otherwise).
    """
    degraded = bicubic_downscale(np.asarray(output, dtype=np.float32), scale)
    lr = np.asarray(lr, dtype=np.float32)
    if degraded.shape != lr.shape:
        raise ValueError(f'the output degraded x{scale} is {degraded.shape}, the input {lr.shape}')
    physical = to_physical or (lambda values: values)
    mae = float(np.mean(np.abs(physical(degraded).astype(np.float64) - physical(lr).astype(np.float64))))
    angle = spectral_angle_degrees(degraded.transpose(2, 0, 1), lr.transpose(2, 0, 1)) if lr.shape[2] >= 3 \
        else float('nan')
    return {'psnr': psnr(degraded, lr), 'mae': mae, 'sam': angle}


@lru_cache(maxsize=16)
def degradation_pair(length: int, scale: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The 1-D bicubic degradation along a side of ``length`` pixels as a matrix A (length / scale, length),
    read off basicsr's imresize applied to the unit vectors, and its pseudo-inverse (float64)."""
    basis = torch.eye(length, dtype=torch.float32).unsqueeze(-1)  # channel k: the k-th unit column
    matrix = imresize(basis, 1 / scale)[..., 0].T.double()
    return matrix, torch.linalg.pinv(matrix)


def project_consistent(output: torch.Tensor, lr: torch.Tensor, scale: int) -> torch.Tensor:
    """``output`` (B, C, H, W) corrected so that its degradation equals ``lr`` (B, C, H/s, W/s) exactly.

    The degradation is separable, D(x) = A_h x A_w^T, and A_h, A_w have full row rank, so
    x + A_h^+ (lr - D(x)) A_w^+^T is the orthogonal projection of x onto the images D maps to ``lr``:
    it changes the output as little as possible (in the least-squares sense) and only where needed.
    """
    with torch.autocast(output.device.type, enabled=False):  # float64 throughout, even under bf16 autocast
        return _project(output, lr, scale)


def _project(output: torch.Tensor, lr: torch.Tensor, scale: int) -> torch.Tensor:
    height, width = output.shape[-2:]
    a_h, p_h = (m.to(output.device) for m in degradation_pair(height, scale))
    a_w, p_w = (m.to(output.device) for m in degradation_pair(width, scale))
    x = output.double()
    residual = lr.double() - torch.einsum('ih,bchw,jw->bcij', a_h, x, a_w)
    return (x + torch.einsum('hi,bcij,wj->bchw', p_h, residual, p_w)).to(output.dtype)


class ConsistentNetwork(torch.nn.Module):
    """``network`` whose every output is projected onto consistency with its input (:func:`project_consistent`)."""

    def __init__(self, network: torch.nn.Module, scale: int):
        super().__init__()
        self.network = network
        self.scale = scale

    @property
    def network_info(self) -> NetworkInfo:
        """The wrapped network's: the projection changes neither scale, channels nor maps."""
        return describe(self.network)

    def forward(self, x: torch.Tensor, return_maps: bool = False):
        if return_maps:
            image, maps = self.network(x, return_maps=True)
            return project_consistent(image.float(), x.float(), self.scale), maps
        return project_consistent(self.network(x).float(), x.float(), self.scale)
