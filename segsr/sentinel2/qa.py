"""Quality layers of a product (the L2A scene classification, SCL) on an output grid, and masks made of classes.

Classes are carried by nearest neighbour and never through a network: a blend of two classes is no class.
"""

import numpy as np
import rasterio
from rasterio.enums import Resampling

from segsr.sentinel2.product import Product
from segsr.sentinel2.stack import Grid, layer_vrt
from segsr.utils.errors import SegSRError

SCL_CLASSES = {
    0: 'no data', 1: 'saturated or defective', 2: 'cast shadows', 3: 'cloud shadows', 4: 'vegetation',
    5: 'not vegetated', 6: 'water', 7: 'unclassified', 8: 'cloud medium probability', 9: 'cloud high probability',
    10: 'thin cirrus', 11: 'snow or ice',
}
"""The SCL class table of the Sentinel-2 L2A products."""
SCL_COLOURS = {
    0: (0, 0, 0, 255), 1: (255, 0, 0, 255), 2: (47, 47, 47, 255), 3: (100, 50, 0, 255), 4: (0, 160, 0, 255),
    5: (255, 230, 90, 255), 6: (0, 0, 255, 255), 7: (128, 128, 128, 255), 8: (192, 192, 192, 255),
    9: (255, 255, 255, 255), 10: (100, 200, 255, 255), 11: (255, 150, 255, 255),
}


def mask_classes(text: str) -> tuple[int, ...]:
    """``'3,8,9,10'`` -> SCL classes; each one of the table."""
    try:
        classes = tuple(int(part) for part in text.split(','))
    except ValueError:
        raise SegSRError(f'--mask-classes {text!r}: give SCL class numbers such as 3,8,9,10') from None
    unknown = [value for value in classes if value not in SCL_CLASSES]
    if unknown:
        raise SegSRError(f'--mask-classes: {unknown[0]} is not an SCL class (0..11: '
                         f'{", ".join(f"{k} {v}" for k, v in SCL_CLASSES.items())})')
    return classes


def class_tags() -> dict[str, str]:
    """The class table as tags (``CLASS_3=cloud shadows``), for a layer written anywhere."""
    return {'LAYER_TYPE': 'thematic', **{f'CLASS_{value}': name for value, name in SCL_CLASSES.items()}}


class QALayer:
    """A categorical layer of a product on ``grid`` (the stack's grid), read by window at any integer zoom."""

    def __init__(self, product: Product, grid: Grid, layer: str = 'SCL'):
        if layer not in product.bands:
            raise SegSRError(f'{product.name} has no {layer} layer (a {product.level} product): '
                             'masks by class need an L2A product')
        self.layer = layer
        self.dataset = rasterio.open(layer_vrt(product, layer, grid))

    def read(self, row0: int, row1: int, col0: int, col1: int, zoom: int = 1) -> np.ndarray:
        """``(h * zoom, w * zoom)`` classes of the grid rectangle, each pixel repeated ``zoom`` times a side."""
        window = rasterio.windows.Window(col0, row0, col1 - col0, row1 - row0)
        shape = ((row1 - row0) * zoom, (col1 - col0) * zoom)
        return self.dataset.read(1, window=window, out_shape=shape, resampling=Resampling.nearest)

    def valid(self, classes: tuple[int, ...], row0: int, row1: int, col0: int, col1: int) -> np.ndarray:
        """True where the layer's class is none of ``classes``."""
        return ~np.isin(self.read(row0, row1, col0, col1), classes)

    def close(self) -> None:
        self.dataset.close()
