"""A Sentinel-2 product read like any raster: its named bands stacked and calibrated, SCL classes as nodata."""

import numpy as np

from segsr.data.geotiff import RasterSource
from segsr.sentinel2.product import Product
from segsr.sentinel2.qa import QALayer
from segsr.sentinel2.request import ProductInput
from segsr.sentinel2.stack import stack_vrt, target_grid
from segsr.utils.errors import SegSRError


class ProductSource(RasterSource):
    """The bands a :class:`ProductInput` names, on one grid, with the product's tags; the pixels of its
    ``mask_classes`` read as invalid, so they are filled before the network and nodata after it."""

    def __init__(self, request: ProductInput):
        if not request.bands:
            raise SegSRError(f'{request.name}: name the bands to stack, e.g. --bands B04,B03,B02,B08 '
                             '(a product holds bands of several resolutions)')
        self.product = Product(request.path)
        super().__init__(stack_vrt(self.product, request.bands, request.resample))
        self.path = request.path
        self.band_names = request.bands
        self.mask_classes = request.mask_classes
        self.grid = target_grid(self.product, request.bands, request.resample)
        self.scene_classes = QALayer(self.product, self.grid) if request.mask_classes else None
        if self.scene_classes is not None:
            self.has_mask = self.masked = True

    def read_valid(self, bands: list[int], row0: int, row1: int, col0: int, col1: int) -> np.ndarray | None:
        valid = super().read_valid(bands, row0, row1, col0, col1)
        if self.scene_classes is None:
            return valid
        clear = self.scene_classes.valid(self.mask_classes, row0, row1, col0, col1)[None]
        return np.broadcast_to(clear, (len(bands), *clear.shape)) if valid is None else valid & clear

    def dataset_tags(self) -> dict:
        tags = {**super().dataset_tags(), **self.product.tags(), 'S2_BANDS': ','.join(self.band_names)}
        if self.mask_classes:
            tags['S2_MASKED_SCL_CLASSES'] = ','.join(map(str, self.mask_classes))
        return tags

    def close(self) -> None:
        if self.scene_classes is not None:
            self.scene_classes.close()
        super().close()


def check_product_contract(source: ProductSource, bands: list[int], contract) -> None:
    """A contract with fixed numbers fits only products calibrated alike (one processing baseline): another
    baseline's DNs would reach the network shifted by its offset, so it is refused, naming product and band."""
    if contract.from_metadata:
        return
    names = [source.band_names[band] for band in bands]
    own = source.product.calibration(names)
    scale, offset = (np.broadcast_to(values, len(names)) for values in (contract.scale, contract.offset))
    for index, name in enumerate(names):
        if not np.isclose(own.scale[index], scale[index]) or not np.isclose(own.offset[index], offset[index]):
            raise SegSRError(
                f'{source.product.name} band {name}: baseline {source.product.metadata.baseline} gives reflectance = '
                f'DN * {own.scale[index]:g} + {own.offset[index]:g}, the fixed radiometric contract DN * '
                f'{scale[index]:g} + {offset[index]:g}; run products of this baseline apart, or train with '
                'radiometry.from_metadata: true')
