"""Synthetic GeoTIFF scenes for the inference benchmarks: large, textured, and written without holding them."""

from pathlib import Path

import numpy as np
import rasterio
from rasterio.transform import Affine
from rasterio.windows import Window

ROWS_PER_WRITE = 256


def write_scene(path: Path, height: int, width: int) -> None:
    """A uint8 RGB GeoTIFF on 10 m UTM pixels with texture at several frequencies, written 256 rows at a time."""
    profile = {
        'driver': 'GTiff', 'height': height, 'width': width, 'count': 3, 'dtype': 'uint8', 'tiled': True,
        'crs': 'EPSG:32633', 'transform': Affine.translation(500000, 5000000) @ Affine.scale(10, -10),
        'compress': 'deflate',
    }
    rng = np.random.default_rng(0)
    with rasterio.open(path, 'w', **profile) as dataset:
        for row in range(0, height, ROWS_PER_WRITE):
            rows = min(ROWS_PER_WRITE, height - row)
            y, x = np.mgrid[row : row + rows, 0:width]
            base = 128 + 60 * np.sin(x / 37.0) * np.cos(y / 23.0)
            block = base[None] + rng.normal(0, 12, (3, rows, width))
            dataset.write(np.clip(block, 0, 255).astype(np.uint8), window=Window(0, row, width, rows))
