"""Multi-band uint16 scenes with calibration metadata and nodata, written with rasterio for the raster tests."""

from pathlib import Path

import numpy as np
import rasterio
from raster_fakes import TRANSFORM, smooth, write_raster

L2A_ADD_OFFSET = -1000
L2A_QUANTIFICATION = 10000


def reflectance(bands: int, size: int, seed: int = 0) -> np.ndarray:
    """Smooth, band-correlated reflectance in about 0.05..0.5, like vegetation and soil."""
    base = smooth(size, size, seed)
    return np.stack([np.clip(0.05 + 0.45 * (0.6 * base + 0.4 * smooth(size, size, seed + band + 1)), 0.01, 0.6)
                     for band in range(bands)]).astype(np.float64)


def l2a_scene(path: Path, bands: int = 4, size: int = 64, seed: int = 0, nodata_corner: int = 0, **extra) -> Path:
    """Sentinel-2 L2A style DNs: (reflectance * 10000) - BOA_ADD_OFFSET, the offset and quantification in tags;
    ``nodata_corner`` pixels of the top-left corner hold nodata 0; ``extra`` goes to the profile."""
    dn = np.rint(reflectance(bands, size, seed) * L2A_QUANTIFICATION - L2A_ADD_OFFSET).astype(np.uint16)
    dn[:, :nodata_corner, :nodata_corner] = 0
    write_raster(path, dn, nodata=0, **extra)
    with rasterio.open(path, 'r+') as dataset:
        dataset.update_tags(BOA_QUANTIFICATION_VALUE=str(L2A_QUANTIFICATION))
        for band in range(1, bands + 1):
            dataset.update_tags(band, BOA_ADD_OFFSET=str(L2A_ADD_OFFSET))
    return path


def scaled_scene(path: Path, bands: int = 6, size: int = 64, seed: int = 0, scale: float = 2.75e-5,
                 offset: float = -0.2, transform=TRANSFORM) -> Path:
    """Landsat Collection 2 style DNs with GDAL band scale/offset: reflectance = DN * scale + offset."""
    dn = np.rint((reflectance(bands, size, seed) - offset) / scale).astype(np.uint16)
    write_raster(path, dn, transform=transform)
    with rasterio.open(path, 'r+') as dataset:
        dataset.scales = [scale] * bands
        dataset.offsets = [offset] * bands
    return path
