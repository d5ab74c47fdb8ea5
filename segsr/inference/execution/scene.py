"""Super-resolve files: read each band group through the tiled network, restore source values, and write."""

import contextlib
import functools
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from segsr.data.geotiff import DEFAULT_BLOCK, GDAL_ERRORS, PLAIN_TIFF, RasterSource, TiffFormat, block_side
from segsr.data.product_source import ProductSource
from segsr.inference.execution.engine import TileUpscaler
from segsr.inference.execution.pipeline import BackgroundWriter, InlineWriter
from segsr.inference.execution.scene_plan import RadiometryOptions, ScenePlan, TilingOptions, plan_scene, scene_tiles
from segsr.inference.execution.tiling import band_extent, upscale_tiled
from segsr.inference.io.image_io import ImageSource
from segsr.inference.io.inputs import InputFile, open_source, plan_input
from segsr.inference.io.qa_output import write_scene_classes
from segsr.inference.io.scene_sinks import (
    band_georeference,
    guidance_names,
    open_image_sink,
    open_maps_sink,
    publish_last,
    spread_names,
)
from segsr.radiometry.nodata import fill_from_nearest_valid
from segsr.radiometry.stretch import BandStretch
from segsr.utils.errors import SegSRError

GDAL_CACHE_MB = 64
FILE_ERRORS = (SegSRError, *GDAL_ERRORS)
"""What one bad input may raise; the run reports it and goes on with the next input."""


@dataclass
class RunReport:
    """Files written, and ``(input, one-line reason)`` for every input that failed, by this process;
    ``failed_elsewhere`` counts the failures of the other processes of a run (known to rank 0)."""

    written: list[Path] = field(default_factory=list)
    failures: list[tuple[str, str]] = field(default_factory=list)
    skipped: list[Path] = field(default_factory=list)
    failed_elsewhere: int = 0
    last_failure: tuple[str, str] | None = None  # this process's last, else the last in the manifest
    summary: str = ''


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


def spread_in_source_units(spread: np.ndarray, stretch: BandStretch, valid: np.ndarray | None) -> np.ndarray:
    """The self-ensemble spread of one band group (network units, per channel) as one band in source units:
    the mean over the group's bands of each band's spread times its stretch span; NaN where nodata."""
    bands = len(stretch.low)
    if spread.shape[0] != bands:  # gray repeated over the network's channels
        spread = spread.mean(axis=0, keepdims=True)
    span = (stretch.high - stretch.low).astype(np.float64)[:, None, None]
    values = (spread * span).mean(axis=0, keepdims=True).astype(np.float32)
    return values if valid is None else np.where(valid.all(axis=0), values, np.float32(np.nan))


def upscaled_alpha(source: ImageSource, scale: int) -> np.ndarray:
    """Transparency is not super-resolved: it is resized bicubically on its own."""
    alpha = source.read([source.alpha_band], 0, source.height, 0, source.width)[0]
    return cv2.resize(alpha, (source.width * scale, source.height * scale), interpolation=cv2.INTER_CUBIC)


def run_scene(
    stack: contextlib.ExitStack,
    source: ImageSource | RasterSource,
    plan: ScenePlan,
    upscaler: TileUpscaler,
    tiling: TilingOptions,
    image_sink,
    maps_sink=None,
    *,
    spread_sink=None,
    band: tuple[int, int] | None = None,
    on_tiles: Callable[[int], None] | None = None,
    write_source: ImageSource | RasterSource | None = None,
) -> None:
    """Every band group through the tiled network into the sinks; the sinks hold the output rows of ``band``.

    ``spread_sink`` takes the self-ensemble spread of each group (an upscaler built with ``uncertainty``) as
    one band in source units. With ``write_source`` (a second handle on the same file) windows are read on a
    reader thread and blocks restored and written on a writer thread, each through its own handle.
    """
    scale = upscaler.scale
    position = plan.position
    threaded = write_source is not None
    writer = BackgroundWriter() if threaded else InlineWriter()
    stack.callback(writer.cancel)  # before the sinks close
    row_offset = 0 if band is None else band_extent(source.height, tiling.tile, tiling.overlap, band)[0] * scale
    for index, group in enumerate(plan.groups):
        group_stretch = plan.stretch.select([position[b] for b in group])
        restore = restore_block(write_source or source, group, group_stretch, scale)
        first_map = index * upscaler.map_channels
        indexes = [position[b] for b in group]
        map_indexes = list(range(first_map, first_map + upscaler.map_channels))

        def write(row: int, col: int, output: np.ndarray, restore=restore, indexes=indexes, maps=map_indexes,
                  index=index, group_stretch=group_stretch) -> None:
            image, valid = restore(row, col, output[: upscaler.sr_channels])
            image_sink.write(row - row_offset, col, image, valid, bands=indexes)
            first_spread = upscaler.sr_channels + upscaler.map_channels
            if maps_sink is not None:
                guidance = output[upscaler.sr_channels : first_spread]
                if valid is not None:
                    guidance = np.where(valid.all(axis=0), guidance, np.float32(np.nan))
                maps_sink.write(row - row_offset, col, guidance, bands=maps)
            if spread_sink is not None:
                spread = spread_in_source_units(output[first_spread:], group_stretch, valid)
                spread_sink.write(row - row_offset, col, spread, bands=[index])

        blocks = stack.enter_context(contextlib.closing(upscale_tiled(
            network_reader(source, group, group_stretch, upscaler.in_channels),
            source.height,
            source.width,
            upscaler,
            scale=scale,
            tile=tiling.tile,
            overlap=tiling.overlap,
            batch=tiling.batch,
            on_batch=on_tiles,
            band=band,
            read_ahead=threaded,
        )))
        for row, col, output in blocks:
            writer.submit(functools.partial(write, row, col, output))
    writer.finish()


def upscale_input(
    planned: InputFile,
    upscaler: TileUpscaler,
    tiling: TilingOptions,
    radiometry: RadiometryOptions,
    tiff_format: TiffFormat = PLAIN_TIFF,
    tags: dict | None = None,
    *,
    band: tuple[int, int] | None = None,
    on_tiles: Callable[[int], None] | None = None,
    io_threads: bool = False,
) -> list[Path]:
    """Super-resolve one input, one network pass per band group, into one output; return the files written.

    With ``band`` (tile rows ``[start, stop)`` of a raster) the files hold only the output rows those tile
    rows finish, for one process of several; ``io_threads`` reads and writes beside the network.
    """
    tags = tags or {}
    with contextlib.ExitStack() as stack:
        source = open_source(planned.source)
        stack.callback(source.close)
        plan = plan_scene(source, upscaler, radiometry, planned.source)
        if isinstance(source, RasterSource) and (nodata := source.differing_nodata(plan.bands)):
            print(f'warning: {planned.source} has a nodata value per band ({nodata}); a GeoTIFF holds one, so '
                  f'{planned.image} marks the nodata pixels of every band with {source.nodata}', file=sys.stderr)
        scale = upscaler.scale
        block = tiff_format.blocksize or block_side(tiling.tile * scale) or DEFAULT_BLOCK
        rows = None if band is None else band_extent(source.height, tiling.tile, tiling.overlap, band)
        planned.image.parent.mkdir(parents=True, exist_ok=True)
        image_sink = open_image_sink(stack, source, planned.image, scale, plan.bands, block, tiff_format, tags, rows,
                                     planned.overwrite)
        maps = spread = None
        if planned.maps is not None:
            names = guidance_names(plan.groups, upscaler.map_stages)
            maps = open_maps_sink(stack, source, planned.maps, scale, names, block, tiff_format, tags, rows,
                                  planned.overwrite)
        if planned.spread is not None:
            spread = open_maps_sink(stack, source, planned.spread, scale, spread_names(plan.groups), block,
                                    tiff_format, tags, rows, planned.overwrite)
        write_source = None
        batches = -(-scene_tiles(source.height, source.width, 1, tiling, band) // tiling.batch)
        if io_threads and batches > 1:  # with one batch there is nothing to read or write beside the network
            write_source = open_source(planned.source) if isinstance(source, RasterSource) else source
            stack.callback(write_source.close)
        run_scene(stack, source, plan, upscaler, tiling, image_sink, maps, spread_sink=spread, band=band,
                  on_tiles=on_tiles, write_source=write_source)
        if planned.qa is not None and isinstance(source, ProductSource):
            write_scene_classes(stack, source, planned.qa, scale, band_georeference(source, scale, rows), block,
                                tiff_format, {**source.dataset_tags(), **tags}, rows, planned.overwrite).commit()
        if isinstance(source, ImageSource) and source.alpha_band is not None:
            image_sink.write_band(len(plan.bands), upscaled_alpha(source, scale))
        publish_last(planned, [maps, spread], image_sink, plan.bands, scale)
    return planned.outputs


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


def one_line(error: Exception) -> str:
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__
