"""Where a super-resolved scene is written: the image, guidance and spread rasters under temporary names, published
image last."""

import contextlib
import sys
from pathlib import Path

import numpy as np
from rasterio.control import GroundControlPoint
from rasterio.enums import ColorInterp
from rasterio.transform import Affine
from tqdm import tqdm

from segsr.data.geotiff import (
    BandMetadata,
    RasterSink,
    RasterSource,
    TiffFormat,
    block_side,
    output_profile,
    refined_georeference,
)
from segsr.inference.io.arrays import ArraySource, NpySink
from segsr.inference.io.consistency_report import write_consistency_report
from segsr.inference.io.image_io import ImageSink, ImageSource
from segsr.inference.io.inputs import InputFile, is_raster
from segsr.utils.files import atomic_path


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
    if isinstance(source, ArraySource):
        sink = NpySink(temporary, height, width, len(bands), source.dtype, source.flat)
    else:
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
