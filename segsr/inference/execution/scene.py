"""Super-resolve files: pick bands, map values into the network range, tile, and write atomically."""

import contextlib
import functools
import sys
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import cv2
import numpy as np
from rasterio.control import GroundControlPoint
from rasterio.enums import ColorInterp
from rasterio.transform import Affine
from tqdm import tqdm

from segsr.data.geotiff import (
    DEFAULT_BLOCK,
    GDAL_ERRORS,
    PLAIN_TIFF,
    BandMetadata,
    RasterSink,
    RasterSource,
    TiffFormat,
    block_side,
    output_profile,
    refined_georeference,
)
from segsr.data.product_source import ProductSource, check_product_contract
from segsr.inference.execution.bands import BandRequest, band_groups, output_bands
from segsr.inference.execution.card_check import check_band_count, warn_if_far
from segsr.inference.execution.engine import TileUpscaler
from segsr.inference.execution.pipeline import BackgroundWriter, InlineWriter
from segsr.inference.execution.tiling import band_extent, count_tiles, tile_rows, upscale_tiled
from segsr.inference.io.arrays import ArraySource
from segsr.inference.io.consistency_report import write_consistency_report
from segsr.inference.io.image_io import ImageSink, ImageSource
from segsr.inference.io.inputs import InputFile, is_raster, open_source, plan_input
from segsr.inference.io.qa_output import write_scene_classes
from segsr.radiometry.contract import Radiometry, calibration_from_metadata
from segsr.radiometry.nodata import fill_from_nearest_valid
from segsr.radiometry.stretch import BandStretch, data_range_stretch, percentile_stretch, unsigned_range_stretch
from segsr.utils.errors import SegSRError
from segsr.utils.files import atomic_path

GDAL_CACHE_MB = 64
FILE_ERRORS = (SegSRError, *GDAL_ERRORS)
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
    contract: Radiometry | None = None
    """The checkpoint's radiometric contract, which ``auto`` applies; None (or the 8-bit default) for none."""


def apply_contract(radiometry: RadiometryOptions, contract: Radiometry | None, warn: bool = True) -> RadiometryOptions:
    """``radiometry`` under a checkpoint's contract: its bands unless ``bands`` names others, and its value map
    under ``stretch='auto'``; another stretch replaces the map, with one warning (``warn``) on a line of its own."""
    if contract is None:
        return radiometry
    if radiometry.stretch != 'auto' and warn:
        tqdm.write(f'warning: stretch {radiometry.stretch} replaces the radiometric contract the weights were '
                   f'trained with ({contract.describe()}); outputs leave the trained value range', file=sys.stderr)
    bands = radiometry.bands if radiometry.bands is not None or not contract.bands else (contract.bands,)
    return replace(radiometry, bands=bands, contract=contract)


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


def choose_stretch(source: ImageSource | RasterSource | ArraySource, bands: list[int], options: RadiometryOptions,
                   name) -> BandStretch:
    """The checkpoint's contract when it has one (the values it was trained on, whatever the scene); else
    8-bit data keep their 0..255 scale (as in training) and deeper data are normalised by percentiles.

    ``range`` is the dtype's range for unsigned integers and the data's min..max for signed and
    float data, whose dtype range (-32768.. or ±3e38) says nothing about the values.
    """
    mode = options.stretch
    if mode == 'auto' and options.contract is not None and not options.contract.is_default:
        return contract_stretch(source, bands, options.contract, name)
    if mode == 'auto':
        mode = 'range' if source.dtype == np.uint8 else 'percentile'
    if mode == 'range':
        if source.dtype.kind == 'u':
            return unsigned_range_stretch(source.dtype, len(bands))
        return data_range_stretch(source.sample(bands))
    if mode == 'percentile':
        return percentile_stretch(source.sample(bands), *options.percentiles)
    raise SegSRError(f'unknown stretch {options.stretch!r}: use auto, range or percentile')


def contract_stretch(source: ImageSource | RasterSource | ArraySource, bands: list[int], contract: Radiometry,
                     name) -> BandStretch:
    """The contract's map of 0-based ``bands``: its scale/offset, or the file's own metadata (``from_metadata``)."""
    contract = contract.for_bands([band + 1 for band in bands])
    metadata = calibration_from_metadata(source.dataset, bands) if isinstance(source, RasterSource) else None
    if isinstance(source, ProductSource):
        check_product_contract(source, bands, contract)
    return contract.stretch(contract.calibration(metadata, str(name)), len(bands))


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


def band_georeference(source: ImageSource | RasterSource, scale: int, rows: tuple[int, int] | None) -> dict:
    """The output's CRS and transform (or ground control points), moved down to the first row of ``rows`` (LR)
    for a band of the scene."""
    if not isinstance(source, RasterSource):
        return {}
    georeference = refined_georeference(source, scale)
    if rows is None or not rows[0]:
        return georeference
    if 'transform' in georeference:
        georeference['transform'] = georeference['transform'] @ Affine.translation(0, rows[0] * scale)
    elif 'gcps' in georeference:  # a GCP's line counts from the band's first row
        georeference['gcps'] = [GroundControlPoint(row=gcp.row - rows[0] * scale, col=gcp.col, x=gcp.x, y=gcp.y,
                                                   z=gcp.z, id=gcp.id, info=gcp.info) for gcp in georeference['gcps']]
    return georeference


def output_height(source: ImageSource | RasterSource, scale: int, rows: tuple[int, int] | None) -> int:
    return (rows[1] - rows[0] if rows is not None else source.height) * scale


def open_image_sink(
    stack: contextlib.ExitStack,
    source: ImageSource | RasterSource,
    path: Path,
    scale: int,
    bands: list[int],
    block: int,
    tiff_format: TiffFormat,
    tags: dict,
    rows: tuple[int, int] | None = None,
    replace: bool = False,
) -> ImageSink | RasterSink:
    """The output under a temporary name, published under ``path`` at the end (replacing a file there only
    with ``replace``); rasters keep georeference, nodata, mask and metadata.

    ``rows`` (LR rows ``[start, stop)``) makes a raster holding only that band of the output.
    """
    height, width = output_height(source, scale, rows), source.width * scale
    temporary = stack.enter_context(atomic_path(path, replace))
    if isinstance(source, RasterSource):
        profile = output_profile(
            height, width, len(bands), source.dtype, source.nodata, band_georeference(source, scale, rows), block,
            tiff_format.compress,
        )
        sink = RasterSink(
            temporary, profile, write_mask=source.has_mask and source.nodata is None, tiff_format=tiff_format,
            final=path,
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
    rows: tuple[int, int] | None = None,
    replace: bool = False,
) -> RasterSink:
    """Guidance maps as float32 bands, one per map and band group, on the output's grid; NaN where nodata."""
    georeference = band_georeference(source, scale, rows)
    height, width = output_height(source, scale, rows), source.width * scale
    nodata = float('nan') if source.nodata is not None or getattr(source, 'masked', False) else None
    profile = output_profile(
        height, width, len(names), np.float32, nodata, georeference, block, tiff_format.compress
    )
    sink = RasterSink(stack.enter_context(atomic_path(path, replace)), profile, tiff_format=tiff_format, final=path)
    stack.callback(sink.close)
    sink.describe([BandMetadata(name, None, 1.0, 0.0, ColorInterp.gray) for name in names], tags)
    return sink


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


@dataclass(frozen=True)
class ScenePlan:
    """Which bands go through the network in which groups, where they land, and how values are mapped."""

    groups: list[list[int]]
    bands: list[int]
    stretch: BandStretch

    @property
    def position(self) -> dict[int, int]:
        return {band: index for index, band in enumerate(self.bands)}


def plan_scene(source: ImageSource | RasterSource, upscaler: TileUpscaler, radiometry: RadiometryOptions,
               name) -> ScenePlan:
    card = getattr(upscaler, 'card', None)  # an ONNX graph carries none
    check_band_count(card, source.band_count, source.alpha_band, radiometry.bands is not None, name)
    warn_if_far(card, source.dtype, getattr(source, 'pixels', None))
    groups = band_groups(radiometry.bands, source.band_count, source.alpha_band, upscaler.in_channels, name)
    bands = output_bands(groups)
    return ScenePlan(groups, bands, choose_stretch(source, bands, radiometry, name))


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


def scene_tiles(height: int, width: int, groups: int, tiling: TilingOptions, band: tuple[int, int] | None = None
                ) -> int:
    """Network calls (tiles) a scene or a band of it takes, for progress reporting."""
    tiles = count_tiles(height, width, tiling.tile, tiling.overlap)
    if band is None:
        return tiles * groups
    per_row = tiles // tile_rows(height, tiling.tile, tiling.overlap)
    return (band[1] - max(band[0] - 1, 0)) * per_row * groups


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


def spread_names(groups: list[list[int]]) -> list[str]:
    """One spread band per band group, named by the bands that made it."""
    return [f'spread bands {",".join(str(b + 1) for b in group)}' for group in groups]


def publish_last(planned: InputFile, extra_sinks: list, image_sink, bands: list[int], scale: int) -> None:
    """Finish the guidance and spread rasters, then the image, then the consistency report (read from the
    image's finished temporary file): the image is renamed onto its final name last of all, when the ExitStack
    that opened it closes, so an existing image means every output of the input is complete."""
    for sink in extra_sinks:
        if sink is not None:
            sink.commit()
    image_sink.commit()
    if planned.report is not None:
        write_consistency_report(planned, bands, scale, written=image_sink.path)


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
    tqdm.write(
        f'warning: --tile {tile} makes {cell}-pixel output cells {reason}, so blocks are compressed twice '
        'and files grow; a tile like 256 avoids this',
        file=sys.stderr,
    )


def one_line(error: Exception) -> str:
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__
