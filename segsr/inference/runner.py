"""Super-resolve files: pick bands, map values into the network range, tile, and write atomically."""

import contextlib
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import rasterio
from rasterio.enums import ColorInterp
from rasterio.errors import RasterioError
from scipy import ndimage
from tqdm import tqdm

from segsr.inference.bands import BandRequest, band_groups, output_bands
from segsr.inference.engine import TileUpscaler
from segsr.inference.geotiff import (
    DEFAULT_BLOCK,
    PLAIN_TIFF,
    BandMetadata,
    RasterSink,
    RasterSource,
    TiffFormat,
    block_side,
    output_profile,
    refined_georeference,
)
from segsr.inference.image_io import ImageSink, ImageSource
from segsr.inference.inputs import InputFile, is_raster, open_source, plan_input
from segsr.inference.radiometry import BandStretch, data_range_stretch, percentile_stretch, unsigned_range_stretch
from segsr.inference.tiling import count_tiles, upscale_tiled
from segsr.utils.errors import SegSRError
from segsr.utils.files import atomic_path, remove_stale_temp_files

GDAL_CACHE_MB = 64
FILE_ERRORS = (SegSRError, RasterioError, OSError)
"""What one bad input may raise; the run reports it and goes on with the next input."""


@dataclass(frozen=True)
class TilingOptions:
    tile: int = 256
    overlap: int = 32
    batch: int = 1


@dataclass(frozen=True)
class RadiometryOptions:
    """``bands``: 1-based groups as in GDAL, or 'each'; ``stretch`` is 'auto', 'range' or 'percentile'."""

    bands: BandRequest = None
    stretch: str = 'auto'
    percentiles: tuple[float, float] = (0.5, 99.5)
    allow_categorical: bool = False


@dataclass
class RunReport:
    """Files written, and ``(input, one-line reason)`` for every input that failed."""

    written: list[Path] = field(default_factory=list)
    failures: list[tuple[str, str]] = field(default_factory=list)


def choose_stretch(source: ImageSource | RasterSource, bands: list[int], options: RadiometryOptions) -> BandStretch:
    """8-bit data keep their 0..255 scale (as in training); deeper data are normalised by percentiles.

    ``range`` is the dtype's range for unsigned integers and the data's min..max for signed and
    float data, whose dtype range (-32768.. or ±3e38) says nothing about the values.
    """
    mode = options.stretch
    if mode == 'auto':
        mode = 'range' if source.dtype == np.uint8 else 'percentile'
    if mode == 'range':
        if source.dtype.kind == 'u':
            return unsigned_range_stretch(source.dtype, len(bands))
        return data_range_stretch(source.sample(bands))
    if mode == 'percentile':
        return percentile_stretch(source.sample(bands), *options.percentiles)
    raise SegSRError(f'unknown stretch {options.stretch!r}: use auto, range or percentile')


def fill_from_nearest_valid(values: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Replace each band's nodata pixels by its nearest valid neighbour in that band, so no fill value bleeds
    into valid data; ``valid`` is ``(C, h, w)`` like ``values``."""
    if valid.all():
        return values
    filled = np.zeros_like(values)
    for band, band_valid in enumerate(valid):
        if band_valid.all():
            filled[band] = values[band]
        elif band_valid.any():
            nearest = ndimage.distance_transform_edt(~band_valid, return_distances=False, return_indices=True)
            filled[band] = values[band][nearest[0], nearest[1]]
    return filled


def network_reader(
    source: ImageSource | RasterSource, bands: list[int], stretch: BandStretch, channels: int
) -> Callable[[int, int, int, int], np.ndarray]:
    """Scene rectangles as the network wants them: normalised, nodata and NaN filled, gray repeated."""

    def read(row0: int, row1: int, col0: int, col1: int) -> np.ndarray:
        values = stretch.to_unit(source.read(bands, row0, row1, col0, col1))
        valid = source.read_valid(bands, row0, row1, col0, col1)
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


def invalid_value(source: ImageSource | RasterSource) -> float | None:
    """What an invalid output pixel holds: the nodata value, else NaN for floats (an integer mask says the rest)."""
    if source.nodata is not None:
        return source.nodata
    return float('nan') if source.dtype.kind == 'f' else None


def upscaled_valid(
    source: ImageSource | RasterSource, bands: list[int], row: int, col: int, shape: tuple[int, int], scale: int
) -> np.ndarray | None:
    """Validity of the LR pixels under an output block, each covering ``scale x scale`` output pixels."""
    row0, col0 = row // scale, col // scale
    valid = source.read_valid(bands, row0, row0 + shape[0] // scale, col0, col0 + shape[1] // scale)
    return None if valid is None else valid.repeat(scale, axis=1).repeat(scale, axis=2)


def restore_block(
    source: ImageSource | RasterSource, bands: list[int], stretch: BandStretch, scale: int
) -> Callable[[int, int, np.ndarray], tuple[np.ndarray, np.ndarray | None]]:
    """Network output back to source values: gray from the channel mean, source dtype, nodata where it was."""
    fill = invalid_value(source)

    def restore(row: int, col: int, block: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        if block.shape[0] != len(bands):
            block = block.mean(axis=0, keepdims=True)
        image = stretch.from_unit(block, source.dtype)
        valid = upscaled_valid(source, bands, row, col, block.shape[1:], scale)
        if valid is None or fill is None:
            return image, valid
        if source.nodata is not None:
            image = keep_off_nodata(image, source.nodata)
        return np.where(valid, image, source.dtype.type(fill)), valid

    return restore


def open_image_sink(
    stack: contextlib.ExitStack,
    source: ImageSource | RasterSource,
    path: Path,
    scale: int,
    bands: list[int],
    block: int,
    tiff_format: TiffFormat,
    tags: dict,
    replace: bool = False,
) -> ImageSink | RasterSink:
    """The output under a temporary name, published under ``path`` at the end (replacing a file there only
    with ``replace``); rasters keep georeference, nodata, mask and metadata."""
    height, width = source.height * scale, source.width * scale
    temporary = stack.enter_context(atomic_path(path, replace))
    if isinstance(source, RasterSource):
        georeference = refined_georeference(source, scale)
        profile = output_profile(
            height, width, len(bands), source.dtype, source.nodata, georeference, block, tiff_format.compress
        )
        sink = RasterSink(
            temporary, profile, write_mask=source.has_mask and source.nodata is None, tiff_format=tiff_format
        )
        stack.callback(sink.close)
        sink.describe([source.band_metadata(band) for band in bands], {**source.dataset_tags(), **tags})
        return sink
    sink = ImageSink(temporary, height, width, len(bands) + (source.alpha_band is not None), source.dtype)
    stack.callback(sink.close)
    return sink


def guidance_names(groups: list[list[int]], stages: list[int]) -> list[str]:
    """``stage 2 map 3``, prefixed by the bands that made it when several groups ran."""
    names = []
    for group in groups:
        prefix = f'bands {",".join(str(b + 1) for b in group)} ' if len(groups) > 1 else ''
        for stage, maps in enumerate(stages, start=1):
            names += [f'{prefix}stage {stage}' + (f' map {m}' if maps > 1 else '') for m in range(1, maps + 1)]
    return names


def open_maps_sink(
    stack: contextlib.ExitStack,
    source: ImageSource | RasterSource,
    path: Path,
    scale: int,
    names: list[str],
    block: int,
    tiff_format: TiffFormat,
    tags: dict,
    replace: bool = False,
) -> RasterSink:
    """Guidance maps as float32 bands, one per map and band group, on the output's grid; NaN where nodata."""
    georeference = refined_georeference(source, scale) if isinstance(source, RasterSource) else {}
    height, width = source.height * scale, source.width * scale
    nodata = float('nan') if source.nodata is not None or getattr(source, 'masked', False) else None
    profile = output_profile(
        height, width, len(names), np.float32, nodata, georeference, block, tiff_format.compress
    )
    sink = RasterSink(stack.enter_context(atomic_path(path, replace)), profile, tiff_format=tiff_format)
    stack.callback(sink.close)
    sink.describe([BandMetadata(name, None, 1.0, 0.0, ColorInterp.gray) for name in names], tags)
    return sink


def upscaled_alpha(source: ImageSource, scale: int) -> np.ndarray:
    """Transparency is not super-resolved: it is resized bicubically on its own."""
    alpha = source.read([source.alpha_band], 0, source.height, 0, source.width)[0]
    return cv2.resize(alpha, (source.width * scale, source.height * scale), interpolation=cv2.INTER_CUBIC)


def upscale_input(
    planned: InputFile,
    upscaler: TileUpscaler,
    tiling: TilingOptions,
    radiometry: RadiometryOptions,
    tiff_format: TiffFormat = PLAIN_TIFF,
    tags: dict | None = None,
    progress_position: int = 0,
) -> list[Path]:
    """Super-resolve one input, one network pass per band group, into one output; return the files written."""
    tags = tags or {}
    with contextlib.ExitStack() as stack:
        source = open_source(planned.source)
        stack.callback(source.close)
        groups = band_groups(
            radiometry.bands, source.band_count, source.alpha_band, upscaler.in_channels, planned.source
        )
        bands = output_bands(groups)
        position = {band: index for index, band in enumerate(bands)}
        stretch = choose_stretch(source, bands, radiometry)
        if isinstance(source, RasterSource) and (nodata := source.differing_nodata(bands)):
            print(f'warning: {planned.source} has a nodata value per band ({nodata}); a GeoTIFF holds one, so '
                  f'{planned.image} marks the nodata pixels of every band with {source.nodata}', file=sys.stderr)
        scale = upscaler.scale
        block = tiff_format.blocksize or block_side(tiling.tile * scale) or DEFAULT_BLOCK
        planned.image.parent.mkdir(parents=True, exist_ok=True)
        image_sink = open_image_sink(stack, source, planned.image, scale, bands, block, tiff_format, tags,
                                     planned.overwrite)
        maps = None
        if planned.maps is not None:
            names = guidance_names(groups, upscaler.map_stages)
            maps = open_maps_sink(stack, source, planned.maps, scale, names, block, tiff_format, tags,
                                  planned.overwrite)
        tiles = count_tiles(source.height, source.width, tiling.tile, tiling.overlap)
        bar = stack.enter_context(
            tqdm(total=tiles * len(groups), unit='tile', desc=planned.name, dynamic_ncols=True,
                 position=progress_position, leave=progress_position == 0)
        )
        for index, group in enumerate(groups):
            group_stretch = stretch.select([position[band] for band in group])
            restore = restore_block(source, group, group_stretch, scale)
            first_map = index * upscaler.map_channels
            blocks = upscale_tiled(
                network_reader(source, group, group_stretch, upscaler.in_channels),
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
                image, valid = restore(row, col, output[: upscaler.sr_channels])
                image_sink.write(row, col, image, valid, bands=[position[band] for band in group])
                if maps is not None:
                    guidance = output[upscaler.sr_channels :]
                    if valid is not None:
                        guidance = np.where(valid.all(axis=0), guidance, np.float32(np.nan))
                    maps.write(row, col, guidance, bands=list(range(first_map, first_map + upscaler.map_channels)))
        if isinstance(source, ImageSource) and source.alpha_band is not None:
            image_sink.write_band(len(bands), upscaled_alpha(source, scale))
        image_sink.commit()
        if maps is not None:
            maps.commit()
    return [p for p in (planned.image, planned.maps) if p is not None]


def upscale_file(
    path: Path,
    output_dir: Path,
    upscaler: TileUpscaler,
    tiling: TilingOptions,
    radiometry: RadiometryOptions,
    guidance: bool = False,
) -> list[Path]:
    """Super-resolve one file into ``output_dir`` under its own name; return the files written."""
    return upscale_input(plan_input(path, output_dir, guidance), upscaler, tiling, radiometry)


def warn_on_partial_blocks(planned: list[InputFile], tile: int, scale: int, tiff_format: TiffFormat) -> None:
    cell = tile * scale
    if not any(is_raster(item.source) for item in planned):
        return
    if tiff_format.blocksize is None and block_side(cell) is None:
        reason = 'that no TIFF block size divides'
    elif tiff_format.blocksize is not None and cell % tiff_format.blocksize:
        reason = f'that --blocksize {tiff_format.blocksize} does not divide'
    else:
        return
    print(
        f'warning: --tile {tile} makes {cell}-pixel output cells {reason}, so blocks are compressed twice '
        'and files grow; a tile like 256 avoids this',
        file=sys.stderr,
    )


def upscale_files(
    planned: list[InputFile],
    upscaler: TileUpscaler,
    tiling: TilingOptions,
    radiometry: RadiometryOptions,
    tiff_format: TiffFormat = PLAIN_TIFF,
    tags: dict | None = None,
) -> RunReport:
    """Every input in turn; one that fails is reported and the rest still run.

    A fixed GDAL block cache keeps reading and writing within a set budget. Partial files that
    killed runs left in an output folder are removed before the first write into it.
    """
    warn_on_partial_blocks(planned, tiling.tile, upscaler.scale, tiff_format)
    report = RunReport()
    cleaned: set[Path] = set()
    several = len(planned) > 1
    with rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_MB), tqdm(
        total=len(planned), unit='file', desc='files', disable=not several, dynamic_ncols=True
    ) as files_bar:
        for item in planned:
            folder = item.image.parent
            if folder not in cleaned and folder.is_dir():
                remove_stale_temp_files(folder)
            cleaned.add(folder)
            try:
                report.written += upscale_input(
                    item, upscaler, tiling, radiometry, tiff_format, tags, progress_position=int(several)
                )
            except FILE_ERRORS as error:
                report.failures.append((str(item.source), one_line(error)))
            files_bar.update(1)
    return report


def one_line(error: Exception) -> str:
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__
