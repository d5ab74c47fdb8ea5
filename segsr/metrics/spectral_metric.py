"""The spectral measures as basicsr metrics, for ``val.metrics`` of raster datasets (see docs/rasters.md).

The model passes physical ``(C, H, W)`` values, the contract's ``data_range`` per band, the nodata
``mask`` and the ``scale``; per-band measures return one value per band (the row keeps the mean and
each band). ``better`` is read by basicsr's best-value tracking.
"""

import numpy as np
from basicsr.utils.registry import METRIC_REGISTRY

from segsr.metrics.spectral import band_psnr, band_ssim, ergas, spectral_angle_degrees


def cropped(img: np.ndarray, img2: np.ndarray, mask: np.ndarray | None, border: int):
    if not border:
        return img, img2, mask
    inner = (slice(None), slice(border, -border), slice(border, -border))
    return img[inner], img2[inner], None if mask is None else mask[border:-border, border:-border]


@METRIC_REGISTRY.register()
def calculate_band_psnr(img: np.ndarray, img2: np.ndarray, data_range: np.ndarray, mask: np.ndarray | None = None,
                        crop_border: int = 0, scale: int = 1, better: str = 'higher') -> np.ndarray:
    output, reference, mask = cropped(img, img2, mask, crop_border)
    return band_psnr(output, reference, data_range, mask)


@METRIC_REGISTRY.register()
def calculate_band_ssim(img: np.ndarray, img2: np.ndarray, data_range: np.ndarray, mask: np.ndarray | None = None,
                        crop_border: int = 0, scale: int = 1, better: str = 'higher') -> np.ndarray:
    output, reference, mask = cropped(img, img2, mask, crop_border)
    return band_ssim(output, reference, data_range, mask)


@METRIC_REGISTRY.register()
def calculate_sam(img: np.ndarray, img2: np.ndarray, data_range: np.ndarray, mask: np.ndarray | None = None,
                  crop_border: int = 0, scale: int = 1, better: str = 'lower') -> float:
    output, reference, mask = cropped(img, img2, mask, crop_border)
    return spectral_angle_degrees(output, reference, mask)


@METRIC_REGISTRY.register()
def calculate_ergas(img: np.ndarray, img2: np.ndarray, data_range: np.ndarray, mask: np.ndarray | None = None,
                    crop_border: int = 0, scale: int = 1, better: str = 'lower') -> float:
    output, reference, mask = cropped(img, img2, mask, crop_border)
    return ergas(output, reference, scale, mask)
