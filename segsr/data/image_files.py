"""One image file of a dataset: its header checked without decoding, or its pixels read, naming the file when bad.

The header check is what lets a run refuse a broken dataset in seconds instead of failing mid-epoch: PIL
reads the size and pixel format from the first bytes of the file; a PNG or JPEG whose end marker is
missing (a copy or download cut short) is decoded in full to tell a truncated file from one that merely
carries trailing bytes, and a TIFF whose strips end beyond the file is truncated.
"""

import contextlib
import io
import os
import warnings
from collections.abc import Iterator
from dataclasses import dataclass

import cv2
import numpy as np
from basicsr.utils import imfrombytes
from PIL import Image, UnidentifiedImageError

from segsr.utils.errors import SegSRError
from segsr.utils.limits import IMAGE_PIXELS, LimitExceeded

REPLACE_FIX = 'replace or remove the file, or drop it from the meta_info_file'
MISSING_FIX = 'check dataroot_gt, dataroot_lq and meta_info_file, or re-run scripts/prepare_dataset.py'
END_MARKERS = {'PNG': b'IEND\xaeB`\x82', 'JPEG': b'\xff\xd9'}
TAIL_BYTES = 4096  # end markers are looked for here, so a few trailing bytes after them are tolerated
GRAY_MODES = frozenset({'1', 'L', 'LA', 'I', 'F', 'I;16', 'I;16L', 'I;16B', 'I;16N'})


class BadImageFile(SegSRError):
    """A listed file that is missing, empty, not an image or cut short: the message names it, ``fix`` the remedy."""

    def __init__(self, message: str = '', fix: str = REPLACE_FIX) -> None:
        super().__init__(message)
        self.fix = fix


@dataclass(frozen=True)
class ImageHeader:
    """What the header says: size in pixels and the traits that an 8-bit 3-channel read changes."""

    width: int
    height: int
    gray: bool = False
    alpha: bool = False
    high_bit_depth: bool = False


@contextlib.contextmanager
def _no_size_limit() -> Iterator[None]:
    """PIL refuses huge images as decompression bombs and warns about damaged metadata; only headers are
    read here, so size is no risk, and damage is reported by the check itself."""
    limit, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter('ignore')
            yield
    finally:
        Image.MAX_IMAGE_PIXELS = limit


def _raw_mode(image: Image.Image) -> str:
    """The pixel layout stored in the file (``RGB;16B`` for 16-bit RGB, which PIL opens as ``RGB``)."""
    if not image.tile:
        return image.mode
    args = image.tile[0].args
    return args[0] if isinstance(args, tuple) else str(args)


def _header_of(image: Image.Image) -> ImageHeader:
    mode, raw = image.mode, _raw_mode(image)
    alpha = 'A' in mode or (mode == 'P' and 'transparency' in image.info)
    high_bit_depth = mode in {'I', 'F'} or mode.startswith('I;16') or ';16' in raw
    return ImageHeader(image.width, image.height, gray=mode in GRAY_MODES, alpha=alpha,
                       high_bit_depth=high_bit_depth)


def check_image_pixels(source: str | io.BytesIO, name: str) -> None:
    """Refuse, from the header alone, an image that decodes to more pixels than the limit (a decompression
    bomb: a few bytes that declare a huge image). Files PIL cannot identify are left to their decoder."""
    try:
        with _no_size_limit(), Image.open(source) as image:
            width, height = image.size
    except (UnidentifiedImageError, SyntaxError, ValueError, OSError):
        return
    IMAGE_PIXELS.check(width * height, f'{name} ({width}x{height})')


def _tail(path: str) -> bytes:
    with open(path, 'rb') as handle:
        handle.seek(max(os.path.getsize(path) - TAIL_BYTES, 0))
        return handle.read()


def tiff_data_end(image: Image.Image) -> int:
    """Where the last strip or tile of a TIFF ends, by its own offsets and byte counts (0 when not a TIFF)."""
    tags = getattr(image, 'tag_v2', None)
    if image.format != 'TIFF' or tags is None:
        return 0
    offsets, counts = tags.get(273) or tags.get(324) or (), tags.get(279) or tags.get(325) or ()
    return max((offset + count for offset, count in zip(offsets, counts, strict=False)), default=0)


def lacks_end_marker(image_format: str | None, tail: bytes) -> bool:
    """Whether a PNG or JPEG has no end marker near its end; other formats have none to look for."""
    marker = END_MARKERS.get(image_format or '')
    return marker is not None and marker not in tail


def decodes_completely(source: str | io.BytesIO) -> bool:
    """A full decode by PIL, which (unlike OpenCV for JPEG) refuses a file cut short."""
    try:
        with _no_size_limit(), Image.open(source) as image:
            image.load()
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        return False
    return True


def _decoded_header(path: str) -> ImageHeader | None:
    """For a file PIL cannot identify: OpenCV may still read it (formats PIL lacks)."""
    img = cv2.imread(path, cv2.IMREAD_UNCHANGED)
    if img is None:
        return None
    channels = 1 if img.ndim == 2 else img.shape[2]
    return ImageHeader(img.shape[1], img.shape[0], gray=channels < 3, alpha=channels in (2, 4),
                       high_bit_depth=img.dtype != np.uint8)


def _start(path: str) -> bytes:
    with open(path, 'rb') as handle:
        return handle.read(16)


def read_header(path: str) -> ImageHeader:
    """The header of one listed image; a missing, empty, non-image or truncated file raises BadImageFile."""
    if not os.path.exists(path):
        raise BadImageFile(f'{path} does not exist', MISSING_FIX)
    if not os.path.isfile(path):
        raise BadImageFile(f'{path} is not a file')
    if os.path.getsize(path) == 0:
        raise BadImageFile(f'{path} is empty (0 bytes)')
    try:
        with _no_size_limit(), Image.open(path) as image:
            header, image_format, data_end = _header_of(image), image.format, tiff_data_end(image)
    except (UnidentifiedImageError, SyntaxError, ValueError, OSError):
        header = _decoded_header(path)
        if header is None:
            raise BadImageFile(f'{path} is not an image that can be read (it starts with {_start(path)!r})') from None
        return header
    if lacks_end_marker(image_format, _tail(path)) and not decodes_completely(path):
        raise BadImageFile(f'{path} is truncated ({image_format} without its end marker)')
    try:
        IMAGE_PIXELS.check(header.width * header.height, f'{path} ({header.width}x{header.height})')
    except LimitExceeded as err:
        raise BadImageFile(str(err)) from None
    if data_end > os.path.getsize(path):
        raise BadImageFile(f'{path} is truncated (its TIFF data ends at byte {data_end}, the file has '
                           f'{os.path.getsize(path)})')
    return header


def read_image(file_client, path: str, key: str) -> np.ndarray:
    """HWC BGR float32 in [0, 1], as basicsr's datasets read; a file that cannot be read raises, naming it.

    Every image becomes 8-bit with 3 channels (OpenCV's colour read); the dataset check warns beforehand
    about files this changes.
    """
    try:
        content = file_client.get(path, key)
    except OSError as err:
        raise BadImageFile(f'{path} cannot be read ({err.strerror or err}); {REPLACE_FIX}') from None
    try:
        img = imfrombytes(content) if content else None
    except cv2.error:
        img = None
    if img is None:
        raise BadImageFile(f'{path} cannot be decoded as an image (empty, truncated or not an image); {REPLACE_FIX}')
    return img.astype(np.float32) / 255.
