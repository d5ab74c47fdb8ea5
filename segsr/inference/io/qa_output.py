"""The scene classification of a product on the output grid, beside the output, with its class table."""

import contextlib
from pathlib import Path

import numpy as np
from rasterio.enums import ColorInterp

from segsr.data.geotiff import BandMetadata, RasterSink, TiffFormat, output_profile
from segsr.data.product_source import ProductSource
from segsr.sentinel2.qa import SCL_COLOURS, QALayer, class_tags
from segsr.utils.files import atomic_path

ROWS_PER_READ = 64
"""Product grid rows read (and zoomed) at a time: the layer is never held whole at the output size."""


def write_scene_classes(stack: contextlib.ExitStack, source: ProductSource, path: Path, scale: int,
                        georeference: dict, block: int, tiff_format: TiffFormat, tags: dict,
                        rows: tuple[int, int] | None = None, replace: bool = False) -> RasterSink:
    """Write the SCL, each class pixel repeated ``scale`` times a side (nearest neighbour), under a temporary
    name published with the output; ``rows`` (grid rows ``[start, stop)``) writes only that band of it."""
    first, last = rows if rows is not None else (0, source.height)
    profile = output_profile((last - first) * scale, source.width * scale, 1, np.uint8, None, georeference, block,
                             tiff_format.compress)
    sink = RasterSink(stack.enter_context(atomic_path(path, replace)), profile, tiff_format=tiff_format, final=path)
    stack.callback(sink.close)
    sink.describe([BandMetadata('SCL', None, 1.0, 0.0, ColorInterp.palette, class_tags())], tags)
    sink.dataset.write_colormap(1, SCL_COLOURS)
    layer = QALayer(source.product, source.grid)
    stack.callback(layer.close)
    for row in range(first, last, ROWS_PER_READ):
        stop = min(row + ROWS_PER_READ, last)
        classes = layer.read(row, stop, 0, source.width, zoom=scale)
        sink.write((row - first) * scale, 0, classes[None])
    return sink
