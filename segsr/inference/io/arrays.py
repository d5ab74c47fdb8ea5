"""Arrays in memory as scene sources, read like a GeoTIFF of the same values would be read."""

import numpy as np

from segsr.utils.errors import SegSRError

LAYOUTS = ('auto', 'chw', 'hwc')


class ArraySource:
    """A ``(C, H, W)`` array with an optional nodata value; validity as GDAL's per-band masks define it.

    A band's pixel is nodata where it holds ``nodata``; float pixels that are not finite are nodata too.
    """

    georeferenced = False
    alpha_band = None

    def __init__(self, pixels: np.ndarray, nodata: float | None = None):
        self.pixels = pixels
        self.band_count, self.height, self.width = pixels.shape
        self.dtype = pixels.dtype
        self.nodata = nodata
        self.has_mask = nodata is not None
        self.masked = self.has_mask or self.dtype.kind == 'f'

    def read(self, bands: list[int], row0: int, row1: int, col0: int, col1: int) -> np.ndarray:
        return self.pixels[bands, row0:row1, col0:col1]

    def read_valid(self, bands: list[int], row0: int, row1: int, col0: int, col1: int) -> np.ndarray | None:
        if not self.masked:
            return None
        values = self.read(bands, row0, row1, col0, col1)
        valid = np.ones(values.shape, bool)
        if self.has_mask:
            valid &= values != self.nodata
        if self.dtype.kind == 'f':
            valid &= np.isfinite(values)
        return valid

    def sample(self, bands: list[int]) -> np.ma.MaskedArray:
        """Every pixel, masked per band where it holds nodata or is not finite (as rasterio's masked read)."""
        values = self.pixels[bands]
        mask = values == self.nodata if self.nodata is not None else np.zeros(values.shape, bool)
        if self.dtype.kind == 'f':
            mask |= ~np.isfinite(values)
        return np.ma.masked_array(values, mask)

    def close(self) -> None:
        """Nothing to release."""


def channels_first(array: np.ndarray, layout: str) -> tuple[np.ndarray, str]:
    """``(C, H, W)`` view of a 2-D, CHW or HWC array, and the layout to give the result back in.

    ``auto`` takes the smaller of the first and last axes as the channels; a tie must be named.
    """
    if layout not in LAYOUTS:
        raise SegSRError(f'layout {layout!r}: use auto, chw or hwc')
    if array.ndim == 2:
        return array[None], 'hw'
    if array.ndim != 3:
        raise SegSRError(f'an array of shape {array.shape} is not an image: pass (H, W), (C, H, W) or (H, W, C)')
    if layout == 'auto':
        if array.shape[0] == array.shape[2]:
            raise SegSRError(f'shape {array.shape} could be CHW or HWC: pass layout="chw" or layout="hwc"')
        layout = 'chw' if array.shape[0] < array.shape[2] else 'hwc'
    return (array if layout == 'chw' else array.transpose(2, 0, 1)), layout


def restore_layout(array: np.ndarray, layout: str) -> np.ndarray:
    if layout == 'hw':
        return array[0]
    return array if layout == 'chw' else array.transpose(1, 2, 0)
