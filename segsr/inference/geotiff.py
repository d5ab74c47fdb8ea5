"""TIFF and GeoTIFF scenes through rasterio, read and written by window so a scene never sits in memory whole."""

import math
import warnings
from pathlib import Path

import numpy as np
import rasterio
from rasterio.enums import ColorInterp, MaskFlags, Resampling
from rasterio.errors import NotGeoreferencedWarning, RasterioIOError
from rasterio.transform import Affine
from rasterio.windows import Window

from segsr.utils.errors import SegSRError

DEFAULT_BLOCK = 256
SAMPLE_SIDE = 1024


class RasterSource:
    """A (Geo)TIFF opened for windowed reads; band indices are 0-based here."""

    def __init__(self, path: Path):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter('ignore', NotGeoreferencedWarning)  # plain TIFFs are welcome
                self.dataset = rasterio.open(path)
        except RasterioIOError as error:
            raise SegSRError(
                f'cannot read raster {path} ({str(error).splitlines()[0]}): pass a readable TIFF'
            ) from None
        dataset = self.dataset
        self.path = path
        self.height, self.width, self.band_count = dataset.height, dataset.width, dataset.count
        self.dtype = np.dtype(dataset.dtypes[0])
        self.nodata = dataset.nodata
        self.alpha_band = next((i for i, ci in enumerate(dataset.colorinterp) if ci == ColorInterp.alpha), None)
        self.georeferenced = dataset.crs is not None or not dataset.transform.is_identity
        self.masked = any(MaskFlags.all_valid not in flags for flags in dataset.mask_flag_enums)

    def read(self, bands: list[int], row0: int, row1: int, col0: int, col1: int) -> np.ndarray:
        window = Window(col0, row0, col1 - col0, row1 - row0)
        return self.dataset.read([band + 1 for band in bands], window=window)

    def read_valid(self, row0: int, row1: int, col0: int, col1: int) -> np.ndarray | None:
        """Pixels that hold data (from nodata, an internal mask or an alpha band); None when all do."""
        if not self.masked:
            return None
        return self.dataset.dataset_mask(window=Window(col0, row0, col1 - col0, row1 - row0)) > 0

    def sample(self, bands: list[int]) -> np.ma.MaskedArray:
        """A decimated read (at most SAMPLE_SIDE pixels a side) of valid pixels, for statistics."""
        step = max(1, math.ceil(max(self.height, self.width) / SAMPLE_SIDE))
        shape = (len(bands), math.ceil(self.height / step), math.ceil(self.width / step))
        indexes = [band + 1 for band in bands]
        return self.dataset.read(indexes, out_shape=shape, masked=True, resampling=Resampling.nearest)

    def close(self) -> None:
        self.dataset.close()


def block_side(cell: int) -> int | None:
    """A TIFF block side (a multiple of 16) near 256 that divides the output cell, if there is one.

    Finished cells then fill whole blocks, so GDAL compresses each block once. Without such a
    side, partly written blocks are compressed again when completed and the file grows.
    """
    sides = [side for side in range(64, 2049, 16) if cell % side == 0]
    return min(sides, key=lambda side: abs(side - DEFAULT_BLOCK)) if sides else None


def output_profile(
    height: int,
    width: int,
    bands: int,
    dtype: np.dtype,
    nodata: float | None = None,
    georeference: dict | None = None,
    block: int = DEFAULT_BLOCK,
) -> dict:
    """Tiled, deflate-compressed GTiff; ``georeference`` holds ``crs`` and ``transform`` when there are any."""
    dtype = np.dtype(dtype)
    return {
        'driver': 'GTiff',
        'height': height,
        'width': width,
        'count': bands,
        'dtype': dtype.name,
        'nodata': nodata,
        'tiled': True,
        'blockxsize': block,
        'blockysize': block,
        'compress': 'deflate',
        'predictor': 3 if dtype.kind == 'f' else 2,
        'BIGTIFF': 'IF_SAFER',
        **(georeference or {}),
    }


def refined_georeference(source: RasterSource, scale: int) -> dict:
    """The source's CRS with pixels ``scale`` times smaller; empty for a source without georeference."""
    if not source.georeferenced:
        return {}
    return {'crs': source.dataset.crs, 'transform': source.dataset.transform @ Affine.scale(1 / scale)}


class RasterSink:
    """Writes finished blocks by window; GDAL's bounded block cache holds any partly written TIFF blocks."""

    def __init__(self, path: Path, profile: dict, write_mask: bool = False):
        with warnings.catch_warnings():
            warnings.simplefilter('ignore', NotGeoreferencedWarning)  # outputs of plain TIFFs and PNGs
            self.dataset = rasterio.open(path, 'w', **profile)
        self.write_mask = write_mask

    def write(self, row: int, col: int, block: np.ndarray, valid: np.ndarray | None = None) -> None:
        window = Window(col, row, block.shape[2], block.shape[1])
        self.dataset.write(block, window=window)
        if self.write_mask:
            self.dataset.write_mask(np.where(valid, 255, 0).astype(np.uint8), window=window)

    def commit(self) -> None:
        """Blocks are already handed to GDAL; closing flushes them."""

    def close(self) -> None:
        self.dataset.close()
