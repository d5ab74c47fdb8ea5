"""Turning one source image into its HR file and every LR_x{s} file.

HR is the source image at the dataset's nominal size (an off-size image is resized to it,
or kept), centre-cropped where the dataset asks for it, and never modcropped: each
LR_x{s} is made from modcrop(HR, s), and datasets crop the GT to LR * s when they read it.
"""

import io
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from segsr.data.image_files import TAIL_BYTES, check_image_pixels, decodes_completely, lacks_end_marker
from segsr.data.prepare.sources import read_member
from segsr.degradations.bicubic import make_lr_uint8
from segsr.utils.errors import SegSRError
from segsr.utils.files import atomic_write_bytes


@dataclass(frozen=True)
class ImageJob:
    src: str
    member: str
    out: str
    name: str
    size: int
    crop: int | None
    scales: tuple[int, ...]
    keep_off_size: bool

    def outputs(self) -> dict[str, Path]:
        folders = ['HR'] + [f'LR_x{scale}' for scale in self.scales]
        return {folder: Path(self.out) / folder / self.name for folder in folders}


@dataclass(frozen=True)
class ImageResult:
    name: str
    member: str
    source_size: tuple[int, int] | None = None
    size: tuple[int, int] | None = None
    error: str | None = None


def decode(data: bytes) -> np.ndarray:
    """8-bit, 3-channel BGR, whatever the file's own format; an empty, truncated or non-image file raises.

    OpenCV decodes a JPEG cut short without complaint (the missing part comes out gray), so a PNG or
    JPEG without its end marker is decoded in full by PIL first, which refuses a truncated file.
    """
    if not data:
        raise ValueError('is empty (0 bytes)')
    check_image_pixels(io.BytesIO(data), 'the image')
    try:
        with Image.open(io.BytesIO(data)) as image:
            image_format = image.format
    except (OSError, SyntaxError, ValueError):
        image_format = None
    if lacks_end_marker(image_format, data[-TAIL_BYTES:]) and not decodes_completely(io.BytesIO(data)):
        raise ValueError(f'is truncated ({image_format} without its end marker)')
    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if img is None:
        raise ValueError(f'cannot be decoded as an image (it starts with {data[:16]!r})')
    return img


def centre_crop(img: np.ndarray, side: int) -> np.ndarray:
    h, w = img.shape[:2]
    top, left = max(h - side, 0) // 2, max(w - side, 0) // 2
    return img[top:top + side, left:left + side]


def make_hr(img: np.ndarray, job: ImageJob) -> np.ndarray:
    if img.shape[:2] != (job.size, job.size) and not job.keep_off_size:
        img = cv2.resize(img, (job.size, job.size), interpolation=cv2.INTER_CUBIC)
    if job.crop is not None:
        img = centre_crop(img, job.crop)
    return img


def encode_png(img: np.ndarray) -> bytes:
    ok, buffer = cv2.imencode('.png', img)
    if not ok:
        raise ValueError('PNG encoding failed')
    return buffer.tobytes()


def read_png(path: Path) -> np.ndarray:
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        raise ValueError(f'{path} exists but cannot be read as an image: remove it and run again')
    return img


def pair_images(hr: np.ndarray, job: ImageJob) -> dict[Path, np.ndarray]:
    """Every LR image of the pair, made from ``hr``; an LR file already there must equal the one made now,
    so a rerun never leaves an LR beside an HR it was not made from."""
    images = {}
    for folder, path in job.outputs().items():
        if folder == 'HR':
            continue
        lr = make_lr_uint8(hr, int(folder.removeprefix('LR_x')))
        if path.exists() and not np.array_equal(read_png(path), lr):
            raise ValueError(f'{path} was not made from the HR image this run uses: remove it (or the HR image) '
                             'and run again to remake the pair')
        images[path] = lr
    return images


def process_image(job: ImageJob) -> ImageResult:
    """Write whichever outputs of one image are missing; a bad file becomes an error result, not an exception.

    An HR image already in the output is kept and is the reference of every LR image; without one, the
    HR image is made from the source. Nothing is written before every existing file is known to match.
    """
    try:
        source = decode(read_member(job.src, job.member))
        hr_path = job.outputs()['HR']
        hr = read_png(hr_path) if hr_path.exists() else make_hr(source, job)
        if min(hr.shape[:2]) < max(job.scales):
            raise ValueError(f'{hr.shape[1]}x{hr.shape[0]} is smaller than scale {max(job.scales)}')
        for path, img in {hr_path: hr, **pair_images(hr, job)}.items():
            if not path.exists():
                atomic_write_bytes(path, encode_png(img))
    except (ValueError, SegSRError) as err:  # the image itself is bad, or over a size limit
        return ImageResult(job.name, job.member, error=str(err))
    except Exception as err:  # noqa: BLE001  (any other failure of one file is reported at the end instead)
        return ImageResult(job.name, job.member, error=f'{type(err).__name__}: {err}')
    return ImageResult(job.name, job.member, source.shape[:2], hr.shape[:2])
