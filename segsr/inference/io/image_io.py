"""PNG and JPEG scenes: read whole into memory (these formats cannot be read by window)."""

from pathlib import Path

import cv2
import numpy as np

from segsr.data.image_files import check_image_pixels
from segsr.utils.errors import SegSRError


class ImageSource:
    """An 8- or 16-bit gray, gray+alpha, RGB or RGBA image held as ``(C, H, W)`` in RGB(A) order."""

    georeferenced = False

    def __init__(self, path: Path):
        check_image_pixels(str(path), str(path))
        image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        if image is None:
            raise SegSRError(f'cannot read image {path}: pass a readable PNG, JPEG or TIFF file')
        if image.ndim == 2:
            image = image[:, :, None]
        elif image.shape[2] == 3:
            image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
        elif image.shape[2] == 4:
            image = cv2.cvtColor(image, cv2.COLOR_BGRA2RGBA)
        self.path = path
        self.pixels = np.ascontiguousarray(image.transpose(2, 0, 1))
        self.band_count, self.height, self.width = self.pixels.shape
        self.dtype = self.pixels.dtype
        self.alpha_band = self.band_count - 1 if self.band_count in (2, 4) else None
        self.nodata = None

    def read(self, bands: list[int], row0: int, row1: int, col0: int, col1: int) -> np.ndarray:
        return self.pixels[bands, row0:row1, col0:col1]

    def read_valid(self, bands: list[int], row0: int, row1: int, col0: int, col1: int) -> np.ndarray | None:
        """Plain images have no nodata; transparency is carried by the alpha band instead."""
        return None

    def sample(self, bands: list[int]) -> np.ma.MaskedArray:
        return np.ma.masked_array(self.pixels[bands])

    def close(self) -> None:
        """Nothing to release; present so every source can be closed alike."""


class ImageSink:
    """Collects output blocks into a full image and encodes it on ``commit`` (format from the suffix)."""

    def __init__(self, path: Path, height: int, width: int, bands: int, dtype: np.dtype):
        self.path = path
        self.pixels = np.zeros((bands, height, width), dtype=dtype)

    def write(
        self, row: int, col: int, block: np.ndarray, valid: np.ndarray | None = None, bands: list[int] | None = None
    ) -> None:
        """``valid`` is accepted for symmetry with rasters; images have no nodata to record."""
        bands = list(range(block.shape[0])) if bands is None else bands
        self.pixels[bands, row : row + block.shape[1], col : col + block.shape[2]] = block

    def write_band(self, band: int, plane: np.ndarray) -> None:
        self.pixels[band] = plane

    def commit(self) -> None:
        image = self.pixels.transpose(1, 2, 0)
        if image.shape[2] == 3:
            image = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
        elif image.shape[2] == 4:
            image = cv2.cvtColor(image, cv2.COLOR_RGBA2BGRA)
        params = [cv2.IMWRITE_JPEG_QUALITY, 95] if self.path.suffix.lower() in ('.jpg', '.jpeg') else []
        if not cv2.imwrite(str(self.path), np.ascontiguousarray(image), params):
            raise SegSRError(f'cannot write {self.path}: check the output folder is writable')

    def close(self) -> None:
        """Nothing to release; the image is written by ``commit``."""
