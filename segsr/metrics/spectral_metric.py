"""The spectral measures as basicsr metrics, for ``val.metrics`` of raster datasets (see docs/rasters.md).

The model passes physical ``(C, H, W)`` values, the contract's ``data_range`` per band, the nodata
``mask`` and the ``scale``; per-band measures return one value per band (the row keeps the mean and
each band). ``better`` is read by basicsr's best-value tracking. ``bands`` (numbered from 1) limits a
measure to some of the network's bands: the Sentinel-2 reference network passes its reference bands through
unchanged, so its scores are those of the bands it sharpens. ``ergas_scale`` is the resolution ratio ERGAS
weighs by, where it differs from the network's scale (2 for that network, which works on one grid).
"""

import numpy as np
from basicsr.utils.registry import METRIC_REGISTRY

from segsr.metrics.spectral import band_psnr, band_ssim, ergas, spectral_angle_degrees


def cropped(img: np.ndarray, img2: np.ndarray, mask: np.ndarray | None, border: int,
            bands: list[int] | None = None):
    if bands is not None:
        chosen = [band - 1 for band in bands]
        img, img2 = img[chosen], img2[chosen]
    if not border:
        return img, img2, mask
    inner = (slice(None), slice(border, -border), slice(border, -border))
    return img[inner], img2[inner], None if mask is None else mask[border:-border, border:-border]


def band_range(data_range: np.ndarray, bands: list[int] | None, count: int) -> np.ndarray:
    full = np.broadcast_to(np.asarray(data_range, dtype=np.float64), count)
    return full if bands is None else full[[band - 1 for band in bands]]


@METRIC_REGISTRY.register()
def calculate_band_psnr(img: np.ndarray, img2: np.ndarray, data_range: np.ndarray, mask: np.ndarray | None = None,
                        crop_border: int = 0, scale: int = 1, better: str = 'higher',
                        bands: list[int] | None = None) -> np.ndarray:
    output, reference, mask = cropped(img, img2, mask, crop_border, bands)
    return band_psnr(output, reference, band_range(data_range, bands, img.shape[0]), mask)


@METRIC_REGISTRY.register()
def calculate_band_ssim(img: np.ndarray, img2: np.ndarray, data_range: np.ndarray, mask: np.ndarray | None = None,
                        crop_border: int = 0, scale: int = 1, better: str = 'higher',
                        bands: list[int] | None = None) -> np.ndarray:
    output, reference, mask = cropped(img, img2, mask, crop_border, bands)
    return band_ssim(output, reference, band_range(data_range, bands, img.shape[0]), mask)


@METRIC_REGISTRY.register()
def calculate_sam(img: np.ndarray, img2: np.ndarray, data_range: np.ndarray, mask: np.ndarray | None = None,
                  crop_border: int = 0, scale: int = 1, better: str = 'lower', bands: list[int] | None = None) -> float:
    output, reference, mask = cropped(img, img2, mask, crop_border, bands)
    return spectral_angle_degrees(output, reference, mask)


@METRIC_REGISTRY.register()
def calculate_ergas(img: np.ndarray, img2: np.ndarray, data_range: np.ndarray, mask: np.ndarray | None = None,
                    crop_border: int = 0, scale: int = 1, better: str = 'lower', bands: list[int] | None = None,
                    ergas_scale: int | None = None) -> float:
    output, reference, mask = cropped(img, img2, mask, crop_border, bands)
    return ergas(output, reference, ergas_scale or scale, mask)
