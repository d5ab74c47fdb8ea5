"""Arrays in memory and ``.npy`` files as scene sources, read like a GeoTIFF of the same values would be read."""

from pathlib import Path

import numpy as np

from segsr.radiometry.input_gate import check_dtype, check_shape
from segsr.utils.errors import SegSRError

LAYOUTS = ('auto', 'chw', 'hwc')


class ArraySource:
    """A ``(C, H, W)`` array with an optional nodata value; validity as GDAL's per-band masks define it.

    A band's pixel is nodata where it holds ``nodata``; float pixels that are not finite are nodata too.
    """

    georeferenced = False
    alpha_band = None

    def __init__(self, pixels: np.ndarray, nodata: float | None = None, what: str = 'the array', flat: bool = False):
        check_dtype(pixels.dtype, what)
        check_shape(pixels.shape, what)
        self.pixels = pixels
        self.flat = flat  # the values came as (H, W) and go back so
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


def read_npy(path: Path) -> np.ndarray:
    """A ``.npy`` file's array (``(H, W)`` or ``(C, H, W)``), its header checked by the input gate before any value
    is read; never unpickled."""
    try:
        with open(path, 'rb') as file:
            version = np.lib.format.read_magic(file)
            read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else \
                np.lib.format.read_array_header_2_0
            shape, _, dtype = read_header(file)
    except (OSError, ValueError) as error:
        raise SegSRError(f'cannot read {path} as a .npy array ({error}): pass a file written by numpy.save') from None
    check_dtype(dtype, str(path))
    check_shape(shape, str(path))
    return np.load(path, mmap_mode='r', allow_pickle=False)


class NpySink:
    """Collects output blocks of a ``.npy`` input and writes them on ``commit`` in the input's layout."""

    def __init__(self, path: Path, height: int, width: int, bands: int, dtype: np.dtype, flat: bool):
        self.path = path
        self.flat = flat
        self.pixels = np.zeros((bands, height, width), dtype=dtype)

    def write(self, row: int, col: int, block: np.ndarray, valid: np.ndarray | None = None,
              bands: list[int] | None = None) -> None:
        """``valid`` is accepted for symmetry with rasters; NaN or the nodata value already mark invalid pixels."""
        bands = list(range(block.shape[0])) if bands is None else bands
        self.pixels[bands, row : row + block.shape[1], col : col + block.shape[2]] = block

    def commit(self) -> None:
        with open(self.path, 'wb') as file:  # a file object: numpy.save would add a second .npy suffix to a name
            np.save(file, self.pixels[0] if self.flat else self.pixels, allow_pickle=False)

    def close(self) -> None:
        """Nothing to release; the array is written by ``commit``."""


def channels_first(array: np.ndarray, layout: str) -> tuple[np.ndarray, str]:
    """``(C, H, W)`` view of a 2-D, CHW or HWC array, and the layout to give the result back in.

    ``auto`` takes the smaller of the first and last axes as the channels; a tie must be named.
    """
    if layout not in LAYOUTS:
        raise SegSRError(f'layout {layout!r}: use auto, chw or hwc')
    check_shape(array.shape, 'the array')
    if array.ndim == 2:
        return array[None], 'hw'
    if layout == 'auto':
        if array.shape[0] == array.shape[2]:
            raise SegSRError(f'shape {array.shape} could be CHW or HWC: pass layout="chw" or layout="hwc"')
        layout = 'chw' if array.shape[0] < array.shape[2] else 'hwc'
    return (array if layout == 'chw' else array.transpose(2, 0, 1)), layout


def restore_layout(array: np.ndarray, layout: str) -> np.ndarray:
    if layout == 'hw':
        return array[0]
    return array if layout == 'chw' else array.transpose(1, 2, 0)
