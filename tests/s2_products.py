"""Tiny Sentinel-2 products laid out like real ones: L1C and L2A .SAFE folders and their zips, never downloaded.

Band files are lossless JPEG 2000 (GDAL's JP2OpenJPEG) under the names and folders of real products; the
metadata file carries the quantification value and, from baseline 04.00, the per-band offset of -1000.
"""

import shutil
import zipfile
from pathlib import Path

import numpy as np

from segsr.sentinel2.layout import BAND_IDS, L2A_FOLDERS, RESOLUTION, write_product

SIDE = 48
"""Pixels a side at 10 m; 24 at 20 m, 8 at 60 m."""


def reflectance(band: str, resolution: int, seed: int = 0) -> np.ndarray:
    """A smooth reflectance field (0.02..0.6) of one band at ``resolution``, the same ground for every resolution."""
    side = SIDE * 10 // resolution
    y, x = (np.mgrid[0:side, 0:side] + 0.5) * resolution / 10
    phase = BAND_IDS.index(band) if band in BAND_IDS else 0
    return 0.3 + 0.2 * np.sin(x / 7 + phase + seed) * np.cos(y / 9 - phase) + 0.05 * (x / SIDE)


def scl_classes(resolution: int = 20) -> np.ndarray:
    """Scene classes in blocks: vegetation, water, cloud (9), cloud shadow (3), ..., every 4 pixels at 20 m."""
    side = SIDE * 10 // resolution
    y, x = np.mgrid[0:side, 0:side] * resolution // 20
    return np.array([4, 6, 9, 3, 5, 8, 10, 11], np.uint8)[(y // 4 + x // 4) % 8]


def make_product(folder: Path, level: str = 'L2A', baseline: str = '05.09', seed: int = 0,
                 quantification: bool = True, omit: tuple[str, ...] = ()) -> Path:
    """A ``.SAFE`` folder in ``folder``; ``omit`` leaves band files out (every resolution of them)."""
    if level == 'L1C':
        layout = {band: (RESOLUTION[band],) for band in BAND_IDS}
    else:
        layout: dict[str, tuple[int, ...]] = {}
        for resolution, names in L2A_FOLDERS.items():
            for band in names:
                layout[band] = (*layout.get(band, ()), resolution)
    bands = {band: {resolution: scl_classes(resolution) if band == 'SCL' else reflectance(band, resolution, seed)
                    for resolution in resolutions}
             for band, resolutions in layout.items() if band not in omit}
    return write_product(folder, bands, level, baseline, seed, quantification)


def zip_product(safe: Path, remove: bool = False) -> Path:
    """``<name>.SAFE.zip`` beside the folder, holding the folder as its top entry (as the archives deliver it)."""
    target = safe.with_name(f'{safe.name}.zip')
    with zipfile.ZipFile(target, 'w', zipfile.ZIP_STORED) as archive:
        for path in sorted(safe.rglob('*')):
            archive.write(path, path.relative_to(safe.parent).as_posix())
    if remove:
        shutil.rmtree(safe)
    return target
