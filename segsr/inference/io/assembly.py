"""A scene split across processes: each band goes to a hidden part file, and one process assembles the
parts into the output, in the requested format, through the same sinks a whole run writes with."""

import contextlib
from pathlib import Path

import rasterio

from segsr.data.geotiff import DEFAULT_BLOCK, RasterSink, TiffFormat, block_side
from segsr.inference.execution.bands import band_groups, output_bands
from segsr.inference.execution.engine import TileUpscaler
from segsr.inference.execution.scene import (
    RadiometryOptions,
    TilingOptions,
    guidance_names,
    open_image_sink,
    open_maps_sink,
    publish_last,
    spread_names,
)
from segsr.inference.execution.tiling import band_extent
from segsr.inference.io.inputs import InputFile, open_source
from segsr.utils.files import temporary_path

PART_KEYS = ('image', 'maps', 'spread')


def part_files(planned: InputFile, part: int, parts: int) -> InputFile:
    """The rasters of one band of ``planned`` (image, guidance, spread); the consistency report is made from
    the assembled output."""
    def band_of(path: Path | None) -> Path | None:  # a temporary name, so a dead writer's part is cleaned
        return None if path is None else temporary_path(path, part=(part, parts))

    # the name holds this process's id: a file of that name can only be a dead writer's, free to replace
    return InputFile(planned.source, band_of(planned.image), band_of(planned.maps), band_of(planned.spread),
                     overwrite=True)


def part_outputs(planned: InputFile) -> dict[str, Path | None]:
    """The rasters a band of a scene is written to, by the key its announcement gives them."""
    return {key: getattr(planned, key) for key in PART_KEYS}


def copy_part(part: Path, sink: RasterSink, row_offset: int) -> None:
    """Every block of a part file into the sink, mask included, ``row_offset`` output rows down."""
    with rasterio.open(part) as dataset:
        for _, window in dataset.block_windows(1):
            valid = dataset.dataset_mask(window=window)[None] > 0 if sink.write_mask else None
            sink.write(window.row_off + row_offset, window.col_off, dataset.read(window=window), valid)


def assemble_scene(
    planned: InputFile,
    parts: list[dict],
    upscaler: TileUpscaler,
    tiling: TilingOptions,
    radiometry: RadiometryOptions,
    tiff_format: TiffFormat,
    tags: dict,
) -> list[Path]:
    """The output of ``planned`` from its parts (``{'image', 'maps', 'band'}`` each, in order); the parts are
    removed whatever happens. Returns the files written."""
    try:
        with contextlib.ExitStack() as stack:
            source = open_source(planned.source)
            stack.callback(source.close)
            groups = band_groups(radiometry.bands, source.band_count, source.alpha_band, upscaler.in_channels,
                                 planned.source)
            scale = upscaler.scale
            block = tiff_format.blocksize or block_side(tiling.tile * scale) or DEFAULT_BLOCK
            bands = output_bands(groups)
            sinks = {'image': open_image_sink(stack, source, planned.image, scale, bands, block, tiff_format, tags,
                                              replace=planned.overwrite)}
            if planned.maps is not None:
                sinks['maps'] = open_maps_sink(stack, source, planned.maps, scale,
                                               guidance_names(groups, upscaler.map_stages), block, tiff_format, tags,
                                               replace=planned.overwrite)
            if planned.spread is not None:
                sinks['spread'] = open_maps_sink(stack, source, planned.spread, scale, spread_names(groups), block,
                                                 tiff_format, tags, replace=planned.overwrite)
            for key, sink in sinks.items():
                for part in parts:
                    start = band_extent(source.height, tiling.tile, tiling.overlap, tuple(part['band']))[0]
                    copy_part(Path(part[key]), sink, start * scale)
            publish_last(planned, [sinks.get('maps'), sinks.get('spread')], sinks['image'], bands, scale)
    finally:
        remove_parts(parts)
    return planned.outputs


def remove_parts(parts: list[dict]) -> None:
    for part in parts:
        for key in PART_KEYS:
            if part.get(key):
                Path(part[key]).unlink(missing_ok=True)
