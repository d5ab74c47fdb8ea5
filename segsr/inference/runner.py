"""Super-resolve files: pick bands, map values into the network range, tile, and write atomically."""

import contextlib
import glob
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import rasterio
from scipy import ndimage
from tqdm import tqdm

from segsr.inference.engine import TileUpscaler
from segsr.inference.geotiff import (
    DEFAULT_BLOCK,
    RasterSink,
    RasterSource,
    block_side,
    output_profile,
    refined_georeference,
)
from segsr.inference.image_io import ImageSink, ImageSource
from segsr.inference.radiometry import BandStretch, dtype_range_stretch, percentile_stretch
from segsr.inference.tiling import count_tiles, upscale_tiled
from segsr.utils.errors import SegSRError
from segsr.utils.files import atomic_path

IMAGE_SUFFIXES = ('.png', '.jpg', '.jpeg')
RASTER_SUFFIXES = ('.tif', '.tiff')
GDAL_CACHE_MB = 64


@dataclass(frozen=True)
class TilingOptions:
    tile: int = 256
    overlap: int = 32
    batch: int = 1


@dataclass(frozen=True)
class RadiometryOptions:
    """``bands`` are 1-based as in GDAL; ``stretch`` is 'auto', 'range' or 'percentile'."""

    bands: tuple[int, ...] | None = None
    stretch: str = 'auto'
    percentiles: tuple[float, float] = (0.5, 99.5)


def collect_inputs(pattern: str) -> list[Path]:
    """A file, every image directly inside a folder, or the files a glob matches."""
    path = Path(pattern)
    if path.is_file():
        return [path]
    candidates = path.iterdir() if path.is_dir() else map(Path, glob.glob(pattern))
    files = sorted(p for p in candidates if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES + RASTER_SUFFIXES)
    if not files:
        raise SegSRError(f'no input images at {pattern}: pass an image file, a folder of images or a glob')
    return files


def open_source(path: Path) -> ImageSource | RasterSource:
    """TIFFs (geo or not) go through rasterio and stream; PNG and JPEG are decoded whole."""
    if path.suffix.lower() in RASTER_SUFFIXES:
        return RasterSource(path)
    if path.suffix.lower() in IMAGE_SUFFIXES:
        return ImageSource(path)
    raise SegSRError(f'cannot read {path}: unsupported format, pass PNG, JPEG or TIFF')


def select_bands(source: ImageSource | RasterSource, requested: tuple[int, ...] | None, channels: int) -> list[int]:
    """0-based source bands to feed the network: the requested ones, or all but alpha."""
    if requested is not None:
        for band in requested:
            if not 1 <= band <= source.band_count:
                raise SegSRError(
                    f'band {band} is out of range: {source.path} has {source.band_count} bands, '
                    f'pick --bands between 1 and {source.band_count}'
                )
        bands = [band - 1 for band in requested]
    else:
        bands = [band for band in range(source.band_count) if band != source.alpha_band]
    if len(bands) != channels and not (len(bands) == 1 and channels == 3):
        raise SegSRError(
            f'{source.path} gives {len(bands)} bands but the network takes {channels}: '
            f'choose {channels} with --bands, e.g. --bands {",".join(str(b) for b in range(channels, 0, -1))}'
        )
    return bands


def choose_stretch(source: ImageSource | RasterSource, bands: list[int], options: RadiometryOptions) -> BandStretch:
    """8-bit data keep their 0..255 scale (as in training); deeper data are stretched by percentiles."""
    mode = options.stretch
    if mode == 'auto':
        mode = 'range' if source.dtype == np.uint8 else 'percentile'
    if mode == 'range':
        return dtype_range_stretch(source.dtype, len(bands))
    if mode == 'percentile':
        return percentile_stretch(source.sample(bands), *options.percentiles)
    raise SegSRError(f'unknown stretch {options.stretch!r}: use auto, range or percentile')


def fill_from_nearest_valid(values: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Replace nodata pixels by their nearest valid neighbour, so no fill value bleeds into valid data."""
    if valid.all():
        return values
    if not valid.any():
        return np.zeros_like(values)
    nearest = ndimage.distance_transform_edt(~valid, return_distances=False, return_indices=True)
    return values[:, nearest[0], nearest[1]]


def network_reader(
    source: ImageSource | RasterSource, bands: list[int], stretch: BandStretch, channels: int
) -> Callable[[int, int, int, int], np.ndarray]:
    """Scene rectangles as the network wants them: [0, 1], nodata filled, gray repeated to its channels."""

    def read(row0: int, row1: int, col0: int, col1: int) -> np.ndarray:
        values = stretch.to_unit(source.read(bands, row0, row1, col0, col1))
        valid = source.read_valid(row0, row1, col0, col1)
        if valid is not None:
            values = fill_from_nearest_valid(values, valid)
        return np.repeat(values, channels, axis=0) if values.shape[0] < channels else values

    return read


def keep_off_nodata(values: np.ndarray, nodata: float) -> np.ndarray:
    """Valid pixels must not read as nodata: nudge those that landed on it by one step."""
    if values.dtype.kind not in 'iu':
        return values
    neighbour = nodata + 1 if nodata < np.iinfo(values.dtype).max else nodata - 1
    return np.where(values == nodata, values.dtype.type(neighbour), values)


def output_paths(path: Path, output_dir: Path, guidance: bool) -> tuple[Path, Path | None]:
    """Same name and format as the input; guidance as a float GeoTIFF beside it. Never onto the input."""
    image = output_dir / path.name
    maps = output_dir / f'{path.stem}_guidance.tif' if guidance else None
    for target in filter(None, (image, maps)):
        if target.resolve() == path.resolve():
            raise SegSRError(f'output {target} would overwrite the input: choose another --output folder')
    return image, maps


def open_image_sink(
    stack: contextlib.ExitStack, source: ImageSource | RasterSource, path: Path, scale: int, bands: int, block: int
) -> ImageSink | RasterSink:
    """The output under a temporary name; TIFFs keep georeference, nodata and mask, images gain their alpha."""
    height, width = source.height * scale, source.width * scale
    temporary = stack.enter_context(atomic_path(path))
    if isinstance(source, RasterSource):
        georeference = refined_georeference(source, scale)
        profile = output_profile(height, width, bands, source.dtype, source.nodata, georeference, block)
        sink = RasterSink(temporary, profile, write_mask=source.masked and source.nodata is None)
    else:
        sink = ImageSink(temporary, height, width, bands + (source.alpha_band is not None), source.dtype)
    stack.callback(sink.close)
    return sink


def open_maps_sink(
    stack: contextlib.ExitStack, source: ImageSource | RasterSource, path: Path, scale: int, bands: int, block: int
) -> RasterSink:
    """Guidance maps as float32 bands, one per map, on the output's grid."""
    georeference = refined_georeference(source, scale) if isinstance(source, RasterSource) else {}
    height, width = source.height * scale, source.width * scale
    profile = output_profile(height, width, bands, np.float32, None, georeference, block)
    sink = RasterSink(stack.enter_context(atomic_path(path)), profile)
    stack.callback(sink.close)
    return sink


def upscaled_alpha(source: ImageSource, scale: int) -> np.ndarray:
    """Transparency is not super-resolved: it is resized bicubically on its own."""
    alpha = source.read([source.alpha_band], 0, source.height, 0, source.width)[0]
    return cv2.resize(alpha, (source.width * scale, source.height * scale), interpolation=cv2.INTER_CUBIC)


def restore_block(
    source: ImageSource | RasterSource, stretch: BandStretch, scale: int, bands: int
) -> Callable[[int, int, np.ndarray], tuple[np.ndarray, np.ndarray | None]]:
    """Network output back to source values: gray from the channel mean, source dtype, nodata where it was."""

    def restore(row: int, col: int, block: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        if block.shape[0] != bands:
            block = block.mean(axis=0, keepdims=True)
        image = stretch.from_unit(block, source.dtype)
        row0, col0 = row // scale, col // scale
        valid = source.read_valid(row0, row0 + block.shape[1] // scale, col0, col0 + block.shape[2] // scale)
        if valid is None:
            return image, None
        valid = valid.repeat(scale, axis=0).repeat(scale, axis=1)
        if source.nodata is not None:
            image = np.where(valid, keep_off_nodata(image, source.nodata), source.dtype.type(source.nodata))
        return image, valid

    return restore


def upscale_file(
    path: Path,
    output_dir: Path,
    upscaler: TileUpscaler,
    tiling: TilingOptions,
    radiometry: RadiometryOptions,
    guidance: bool = False,
) -> list[Path]:
    """Super-resolve one file into ``output_dir``; return the files written."""
    image_path, maps_path = output_paths(path, output_dir, guidance)
    with contextlib.ExitStack() as stack:
        source = open_source(path)
        stack.callback(source.close)
        bands = select_bands(source, radiometry.bands, upscaler.in_channels)
        stretch = choose_stretch(source, bands, radiometry)
        scale = upscaler.scale
        block = block_side(tiling.tile * scale) or DEFAULT_BLOCK
        image_sink = open_image_sink(stack, source, image_path, scale, len(bands), block)
        maps = open_maps_sink(stack, source, maps_path, scale, upscaler.map_channels, block) if maps_path else None
        restore = restore_block(source, stretch, scale, len(bands))
        total = count_tiles(source.height, source.width, tiling.tile, tiling.overlap)
        with tqdm(total=total, unit='tile', desc=path.name, dynamic_ncols=True) as bar:
            blocks = upscale_tiled(
                network_reader(source, bands, stretch, upscaler.in_channels),
                source.height,
                source.width,
                upscaler,
                scale=scale,
                tile=tiling.tile,
                overlap=tiling.overlap,
                batch=tiling.batch,
                on_batch=bar.update,
            )
            for row, col, output in blocks:
                image_sink.write(row, col, *restore(row, col, output[: upscaler.sr_channels]))
                if maps is not None:
                    maps.write(row, col, output[upscaler.sr_channels :])
        if isinstance(source, ImageSource) and source.alpha_band is not None:
            image_sink.write_band(len(bands), upscaled_alpha(source, scale))
        image_sink.commit()
        if maps is not None:
            maps.commit()
    return [p for p in (image_path, maps_path) if p is not None]


def upscale_files(
    inputs: list[Path],
    output_dir: Path,
    upscaler: TileUpscaler,
    tiling: TilingOptions,
    radiometry: RadiometryOptions,
    guidance: bool = False,
) -> list[Path]:
    """Every input in turn; a fixed GDAL block cache keeps reading and writing within a set budget."""
    output_dir.mkdir(parents=True, exist_ok=True)
    cell = tiling.tile * upscaler.scale
    if block_side(cell) is None and any(path.suffix.lower() in RASTER_SUFFIXES for path in inputs):
        print(
            f'warning: --tile {tiling.tile} makes {cell}-pixel output cells that no TIFF block size divides, '
            'so blocks are compressed twice and files grow; a tile like 256 avoids this',
            file=sys.stderr,
        )
    written = []
    with rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_MB):
        for path in inputs:
            written += upscale_file(path, output_dir, upscaler, tiling, radiometry, guidance)
    return written
