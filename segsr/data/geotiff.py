"""GeoTIFF, VRT and other GDAL rasters through rasterio, read and written by window, never whole."""

import math
import os
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import rasterio
import rasterio.shutil
from rasterio._err import CPLE_BaseError
from rasterio.control import GroundControlPoint
from rasterio.enums import ColorInterp, MaskFlags, Resampling
from rasterio.errors import NotGeoreferencedWarning, RasterioError
from rasterio.transform import Affine
from rasterio.windows import Window

from segsr.utils.errors import SegSRError
from segsr.utils.files import atomic_path, temporary_path, write_failure

GDAL_ERRORS = (RasterioError, CPLE_BaseError, OSError)
"""What GDAL raises through rasterio: its own error types, some of which rasterio does not wrap."""
DEFAULT_BLOCK = 256
SAMPLE_SIDE = 1024
CLASS_WORDS = re.compile(r'\b(class(es|ification)?|categor(y|ies|ical)|land ?cover|land ?use|labels?)\b', re.I)
STALE_BAND_TAGS = re.compile(r'^STATISTICS_')
"""Band statistics of the LR input do not describe the SR output; GDAL recomputes them on demand."""


@dataclass(frozen=True)
class BandMetadata:
    """What GDAL says about one band, carried to the output band made from it."""

    description: str | None
    unit: str | None
    scale: float
    offset: float
    colorinterp: ColorInterp
    tags: dict = field(default_factory=dict)


class RasterSource:
    """A raster GDAL can open (GeoTIFF, VRT, /vsizip/...) for windowed reads; band indices are 0-based here."""

    def __init__(self, path: Path | str):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter('ignore', NotGeoreferencedWarning)  # plain TIFFs are welcome
                self.dataset = rasterio.open(path)
        except RasterioError as error:
            raise SegSRError(
                f'cannot read raster {path} ({str(error).splitlines()[0]}): pass a readable GeoTIFF or VRT'
            ) from None
        dataset = self.dataset
        if any('complex' in dtype for dtype in dataset.dtypes):
            dataset.close()
            raise SegSRError(f'{path} holds complex values ({dataset.dtypes[0]}), which a super-resolution network '
                             'does not take: write the amplitude (or the real and imaginary parts as two bands) '
                             'to a new raster and pass that')
        self.path = path
        self.height, self.width, self.band_count = dataset.height, dataset.width, dataset.count
        self.dtype = np.dtype(dataset.dtypes[0])
        self.nodata = dataset.nodata
        self.band_nodata = dataset.nodatavals
        self.alpha_band = next((i for i, ci in enumerate(dataset.colorinterp) if ci == ColorInterp.alpha), None)
        self.gcps, self.gcp_crs = dataset.gcps
        self.georeferenced = dataset.crs is not None or not dataset.transform.is_identity or bool(self.gcps)
        self.has_mask = any(MaskFlags.all_valid not in flags for flags in dataset.mask_flag_enums)
        self.masked = self.has_mask or self.dtype.kind == 'f'  # float bands may hold NaN/inf: nodata too

    def read(self, bands: list[int], row0: int, row1: int, col0: int, col1: int) -> np.ndarray:
        return self.dataset.read([band + 1 for band in bands], window=Window(col0, row0, col1 - col0, row1 - row0))

    def read_valid(self, bands: list[int], row0: int, row1: int, col0: int, col1: int) -> np.ndarray | None:
        """``(len(bands), h, w)``: the pixels that hold data, band by band: GDAL's mask of each band (its own
        nodata, an internal mask, alpha) and, for floats, finite values. None when all pixels do.

        Per band, because the dataset mask is valid where *any* band is: a band whose nodata differs from
        the others' would otherwise have its nodata pixels taken for values."""
        if not self.masked:
            return None
        window = Window(col0, row0, col1 - col0, row1 - row0)
        valid = np.ones((len(bands), row1 - row0, col1 - col0), bool)
        if self.has_mask:
            valid &= self.dataset.read_masks([band + 1 for band in bands], window=window) > 0
        if self.dtype.kind == 'f':
            valid &= np.isfinite(self.read(bands, row0, row1, col0, col1))
        return valid

    def differing_nodata(self, bands: list[int]) -> str | None:
        """The bands' nodata values when they are not all the same (a GeoTIFF stores only one)."""
        values = [self.band_nodata[band] for band in bands]
        if len({repr(value) for value in values}) < 2:
            return None
        return ', '.join(f'band {band + 1}: {value}' for band, value in zip(bands, values, strict=True))

    def sample(self, bands: list[int]) -> np.ma.MaskedArray:
        """A decimated read (at most SAMPLE_SIDE pixels a side) of valid pixels, for statistics."""
        step = max(1, math.ceil(max(self.height, self.width) / SAMPLE_SIDE))
        shape = (len(bands), math.ceil(self.height / step), math.ceil(self.width / step))
        indexes = [band + 1 for band in bands]
        sample = self.dataset.read(indexes, out_shape=shape, masked=True, resampling=Resampling.nearest)
        return np.ma.masked_invalid(sample) if self.dtype.kind == 'f' else sample

    def categorical_reason(self, bands: list[int]) -> str | None:
        """Why the bands hold classes rather than measurements, if they do (blurring classes invents new ones)."""
        for band in bands:
            if self.dataset.colorinterp[band] == ColorInterp.palette:
                return f'band {band + 1} has a colour table'
            layer_type = self.dataset.tags(band + 1).get('LAYER_TYPE') or self.dataset.tags().get('LAYER_TYPE')
            if (layer_type or '').lower() == 'thematic':
                return f'band {band + 1} is a thematic layer (LAYER_TYPE=thematic)'
            description = self.dataset.descriptions[band] or ''
            if CLASS_WORDS.search(description):
                return f'band {band + 1} is described as {description!r}'
        return None

    def band_metadata(self, band: int) -> BandMetadata:
        dataset = self.dataset
        tags = {key: value for key, value in dataset.tags(band + 1).items() if not STALE_BAND_TAGS.match(key)}
        return BandMetadata(
            description=dataset.descriptions[band],
            unit=dataset.units[band],
            scale=dataset.scales[band],
            offset=dataset.offsets[band],
            colorinterp=dataset.colorinterp[band],
            tags=tags,
        )

    def dataset_tags(self) -> dict:
        """Default-domain dataset tags, AREA_OR_POINT among them."""
        return dict(self.dataset.tags())

    def close(self) -> None:
        self.dataset.close()


@dataclass(frozen=True)
class TiffFormat:
    """How rasters are written: ``compress`` is a GDAL codec name; ``blocksize`` None picks one from the tile."""

    cog: bool = False
    compress: str = 'deflate'
    blocksize: int | None = None


PLAIN_TIFF = TiffFormat()


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
    compress: str = 'deflate',
) -> dict:
    """Tiled, compressed GTiff; ``georeference`` holds ``crs`` and ``transform`` when there are any."""
    dtype = np.dtype(dtype)
    profile = {
        'driver': 'GTiff',
        'height': height,
        'width': width,
        'count': bands,
        'dtype': dtype.name,
        'nodata': nodata,
        'tiled': True,
        'blockxsize': block,
        'blockysize': block,
        'BIGTIFF': 'IF_SAFER',
        **(georeference or {}),
    }
    if compress.lower() != 'none':
        profile['compress'] = compress
        if compress.lower() in ('deflate', 'lzw', 'zstd'):
            profile['predictor'] = 3 if dtype.kind == 'f' else 2
    return profile


def refined_georeference(source: RasterSource, scale: int) -> dict:
    """The source's CRS with pixels ``scale`` times smaller; empty for a source without georeference.

    A raster georeferenced by ground control points only keeps them, each at its place on the finer grid
    (GCP pixel and line are corner-based, so they scale by ``scale`` exactly)."""
    if not source.georeferenced:
        return {}
    if source.gcps and source.dataset.crs is None and source.dataset.transform.is_identity:
        gcps = [GroundControlPoint(row=gcp.row * scale, col=gcp.col * scale, x=gcp.x, y=gcp.y, z=gcp.z, id=gcp.id,
                                   info=gcp.info) for gcp in source.gcps]
        return {'gcps': gcps, 'crs': source.gcp_crs}
    return {'crs': source.dataset.crs, 'transform': source.dataset.transform @ Affine.scale(1 / scale)}


def write_float_raster(path: str | os.PathLike, values: np.ndarray) -> None:
    """A ``(C, H, W)`` float32 array as a plain GeoTIFF (no georeference), written atomically."""
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(final) as temporary, warnings.catch_warnings():
        warnings.simplefilter('ignore', NotGeoreferencedWarning)
        profile = output_profile(values.shape[1], values.shape[2], values.shape[0], values.dtype)
        with rasterio.open(temporary, 'w', **profile) as dataset:
            dataset.write(values)


def staging_path(final: Path) -> Path:
    """The hidden tiled GeoTIFF a COG is translated from; a temporary name like every other, so it is cleaned alike."""
    return temporary_path(final.with_name(f'{final.stem}.tiled.tif'))


class RasterSink:
    """Writes finished blocks by window; GDAL's bounded block cache holds any partly written TIFF blocks.

    With ``tiff_format.cog`` the blocks go to a hidden tiled GeoTIFF that ``commit`` translates, with
    overviews, into a Cloud-Optimized GeoTIFF at ``path`` (GDAL's COG driver needs a finished source).
    """

    def __init__(self, path: Path, profile: dict, write_mask: bool = False, tiff_format: TiffFormat = PLAIN_TIFF,
                 final: Path | None = None):
        self.path = path
        self.final = final or path  # the name a message gives: the output, not its temporary file
        self.format = tiff_format
        self.target = staging_path(path) if tiff_format.cog else path
        with warnings.catch_warnings():
            warnings.simplefilter('ignore', NotGeoreferencedWarning)  # outputs of plain TIFFs and PNGs
            self.dataset = rasterio.open(self.target, 'w', **profile)
        self.write_mask = write_mask

    def describe(self, bands: list[BandMetadata], tags: dict) -> None:
        """Band descriptions, units, scales, offsets, colour interpretation and tags, set before any pixel."""
        dataset = self.dataset
        for index, band in enumerate(bands, start=1):
            if band.description:
                dataset.set_band_description(index, band.description)
            if band.unit:
                dataset.set_band_unit(index, band.unit)
            if band.tags:
                dataset.update_tags(index, **band.tags)
        dataset.scales = [band.scale for band in bands]
        dataset.offsets = [band.offset for band in bands]
        dataset.colorinterp = [band.colorinterp for band in bands]
        dataset.update_tags(**tags)

    def write(
        self, row: int, col: int, block: np.ndarray, valid: np.ndarray | None = None, bands: list[int] | None = None
    ) -> None:
        """``bands``: 0-based output bands the block's channels go to (all of them by default)."""
        window = Window(col, row, block.shape[2], block.shape[1])
        indexes = None if bands is None else [band + 1 for band in bands]
        try:
            self.dataset.write(block, indexes=indexes, window=window)
            if self.write_mask and valid is not None:  # one mask for the dataset: valid where every band is
                self.dataset.write_mask(np.where(valid.all(axis=0), 255, 0).astype(np.uint8), window=window)
        except GDAL_ERRORS as error:
            raise write_failure(self.final, error, 'raster', 'free space or choose another --output') from None

    def commit(self) -> None:
        """Blocks are already handed to GDAL; closing flushes them, and a COG is translated from them.

        A write that fails there (a full disk while the overviews are built) is one line naming the output.
        """
        try:
            self._finish()
        except GDAL_ERRORS as error:
            raise write_failure(self.final, error, 'raster', 'free space or choose another --output') from None

    def _finish(self) -> None:
        self.dataset.close()
        if not self.format.cog:
            return
        options = {'COMPRESS': self.format.compress.upper(), 'OVERVIEWS': 'AUTO', 'BIGTIFF': 'IF_SAFER'}
        if self.format.compress.lower() in ('deflate', 'lzw', 'zstd'):
            options['PREDICTOR'] = 'YES'
        if self.format.blocksize:
            options['BLOCKSIZE'] = self.format.blocksize
        try:
            rasterio.shutil.copy(self.target, self.path, driver='COG', **options)
        finally:
            self.target.unlink(missing_ok=True)

    def close(self) -> None:
        """Release the file; after a failure, GDAL's own complaint about it is not the error to report."""
        try:
            self.dataset.close()
        except GDAL_ERRORS:
            pass
        if self.format.cog:
            self.target.unlink(missing_ok=True)
