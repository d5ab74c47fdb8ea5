"""A scene split across processes: each band goes to a hidden part file, and one process assembles the
parts into the output, in the requested format, through the same sinks a whole run writes with."""

import contextlib
import os
from pathlib import Path

import rasterio

from segsr.inference.bands import band_groups, output_bands
from segsr.inference.engine import TileUpscaler
from segsr.inference.geotiff import DEFAULT_BLOCK, RasterSink, TiffFormat, block_side
from segsr.inference.inputs import InputFile, open_source
from segsr.inference.runner import RadiometryOptions, TilingOptions, guidance_names, open_image_sink, open_maps_sink
from segsr.inference.tiling import band_extent


def part_path(final: Path, part: int, parts: int) -> Path:
    """Hidden and named like every partial file (``.stem.partial-PID...``), so a dead writer's part is cleaned."""
    return final.with_name(f'.{final.stem}.partial-{os.getpid()}.band-{part}-of-{parts}{final.suffix}')


def part_files(planned: InputFile, part: int, parts: int) -> InputFile:
    maps = None if planned.maps is None else part_path(planned.maps, part, parts)
    return InputFile(planned.source, part_path(planned.image, part, parts), maps)


def copy_part(part: Path, sink: RasterSink, row_offset: int) -> None:
    """Every block of a part file into the sink, mask included, ``row_offset`` output rows down."""
    with rasterio.open(part) as dataset:
        for _, window in dataset.block_windows(1):
            valid = dataset.dataset_mask(window=window) > 0 if sink.write_mask else None
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
            sinks = [(open_image_sink(stack, source, planned.image, scale, output_bands(groups), block, tiff_format,
                                      tags), 'image')]
            if planned.maps is not None:
                names = guidance_names(groups, upscaler.map_stages)
                sinks.insert(0, (open_maps_sink(stack, source, planned.maps, scale, names, block, tiff_format, tags),
                                 'maps'))
            for sink, key in sinks:
                for part in parts:
                    start = band_extent(source.height, tiling.tile, tiling.overlap, tuple(part['band']))[0]
                    copy_part(Path(part[key]), sink, start * scale)
                sink.commit()  # maps first, the image last: an existing image means a complete output
    finally:
        remove_parts(parts)
    return [p for p in (planned.image, planned.maps) if p is not None]


def remove_parts(parts: list[dict]) -> None:
    for part in parts:
        for key in ('image', 'maps'):
            if part.get(key):
                Path(part[key]).unlink(missing_ok=True)
