"""Fidelity measures for physical values of any band count: per-band PSNR and SSIM, SAM and ERGAS.

Every function takes ``(C, H, W)`` float arrays (output first, reference second) and an optional
``(H, W)`` mask that is True where the reference holds data; masked-out pixels count nowhere.
"""

import numpy as np
from skimage.metrics import structural_similarity

from segsr.utils.errors import SegSRError

SSIM_PAD = 5
"""Half the Gaussian window scikit-image uses for sigma 1.5 (11 pixels a side)."""


def valid_pixels(shape: tuple[int, int], mask: np.ndarray | None) -> np.ndarray:
    valid = np.ones(shape, bool) if mask is None else np.asarray(mask, bool).reshape(shape)
    if not valid.any():
        raise SegSRError('the mask leaves no valid pixel to measure; lower nodata_max_share or drop the window')
    return valid


def band_psnr(output: np.ndarray, reference: np.ndarray, data_range: np.ndarray | float,
              mask: np.ndarray | None = None) -> np.ndarray:
    """PSNR of each band in dB, with the peak being the band's data range (the contract's high - low)."""
    valid = valid_pixels(reference.shape[1:], mask)
    error = (output.astype(np.float64) - reference.astype(np.float64))[:, valid]
    mse = np.mean(error ** 2, axis=1)
    peak = np.broadcast_to(np.asarray(data_range, dtype=np.float64), mse.shape)
    with np.errstate(divide='ignore'):
        return 10 * np.log10(peak ** 2 / mse)


def band_ssim(output: np.ndarray, reference: np.ndarray, data_range: np.ndarray | float,
              mask: np.ndarray | None = None) -> np.ndarray:
    """SSIM of each band (Gaussian window, sigma 1.5, as Wang et al.), averaged over the valid pixels whose
    window lies inside the image (as scikit-image averages)."""
    valid = valid_pixels(reference.shape[1:], mask).copy()
    valid[:SSIM_PAD] = valid[-SSIM_PAD:] = False
    valid[:, :SSIM_PAD] = valid[:, -SSIM_PAD:] = False
    if not valid.any():
        raise SegSRError(f'SSIM needs windows larger than {2 * SSIM_PAD} pixels a side inside the cropped border; '
                         'use larger val/test windows')
    ranges = np.broadcast_to(np.asarray(data_range, dtype=np.float64), reference.shape[:1])
    values = []
    for band, peak in enumerate(ranges):
        _, ssim_map = structural_similarity(output[band].astype(np.float64), reference[band].astype(np.float64),
                                            data_range=float(peak), gaussian_weights=True, sigma=1.5,
                                            use_sample_covariance=False, full=True)
        values.append(float(ssim_map[valid].mean()))
    return np.asarray(values)


def spectral_angle_degrees(output: np.ndarray, reference: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Mean angle, in degrees, between the per-pixel band vectors of ``output`` and ``reference`` (SAM).

    Brightness changes leave the angle at 0; a change of band ratios (a colour or material change) does
    not. Pixels where either vector is zero have no direction and are left out, as are pixels outside
    ``mask`` (H, W); NaN when none is left.
    """
    a = np.asarray(output, dtype=np.float64).reshape(output.shape[0], -1)
    b = np.asarray(reference, dtype=np.float64).reshape(reference.shape[0], -1)
    norms = np.linalg.norm(a, axis=0) * np.linalg.norm(b, axis=0)
    keep = norms > 0
    if mask is not None:
        keep &= np.asarray(mask, dtype=bool).reshape(-1)
    if not keep.any():
        return float('nan')
    cosine = np.clip((a[:, keep] * b[:, keep]).sum(axis=0) / norms[keep], -1.0, 1.0)
    return float(np.degrees(np.arccos(cosine)).mean())


def ergas(output: np.ndarray, reference: np.ndarray, scale: int, mask: np.ndarray | None = None) -> float:
    """ERGAS = 100 / scale * sqrt(mean over bands of (RMSE_b / mean_b)^2), the reference's band means."""
    valid = valid_pixels(reference.shape[1:], mask)
    out, ref = output.astype(np.float64)[:, valid], reference.astype(np.float64)[:, valid]
    rmse_squared = np.mean((out - ref) ** 2, axis=1)
    means = ref.mean(axis=1)
    if np.any(means == 0):
        raise SegSRError('ERGAS divides by the reference band means and one is 0; drop ergas from val.metrics '
                         'for data centred on zero')
    return float(100.0 / scale * np.sqrt(np.mean(rmse_squared / means ** 2)))
