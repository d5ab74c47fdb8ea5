"""Tiny stand-ins for the distributed remote-sensing archives, in each one's real folder layout."""

import zipfile
from pathlib import Path

import cv2
import numpy as np

CORRUPT_BYTES = b'this is not an image'


def scene(height: int, width: int, seed: int) -> np.ndarray:
    """A smooth random BGR image, so bicubic downscaling has structure to act on."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, size=(max(height // 8, 2), max(width // 8, 2), 3), dtype=np.uint8)
    img = cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC)
    return np.clip(img.astype(np.int16) + rng.integers(-12, 13, size=img.shape), 0, 255).astype(np.uint8)


def encode(img: np.ndarray, member: str) -> bytes:
    ext = Path(member).suffix.lower()
    ok, buffer = cv2.imencode(ext if ext != '.tiff' else '.tif', img)
    assert ok
    return buffer.tobytes()


def ucmerced_members(classes: dict[str, int]) -> list[str]:
    return [f'UCMerced_LandUse/Images/{label}/{label}{i:02d}.tif' for label, n in classes.items() for i in range(n)]


def aid_members(classes: dict[str, int]) -> list[str]:
    return [f'AID/{label}/{label.lower()}_{i + 1}.jpg' for label, n in classes.items() for i in range(n)]


def whu_rs19_members(classes: dict[str, int]) -> list[str]:
    separators = {'Beach': '-'}
    return [f'WHU-RS19/{label}/{label.lower()}{separators.get(label, "_")}{i + 1:02d}.jpg'
            for label, n in classes.items() for i in range(n)]


def rsscn7_members(classes: dict[str, int]) -> list[str]:
    return [f'RSSCN7/{label}/{label[0]}{i + 1:03d}.JPG' for label, n in classes.items() for i in range(n)]


def siri_whu_members(classes: dict[str, int]) -> list[str]:
    """Numbered files that repeat across classes, to exercise the class-prefix naming rule."""
    return [f'SIRI-WHU/12class_tif/{label}/{i + 1}.TIF' for label, n in classes.items() for i in range(n)]


def build(path: Path, members: list[str], size: int, off_size: dict[str, tuple[int, int]] | None = None,
          corrupt: tuple[str, ...] = (), as_zip: bool = True) -> Path:
    """Write the images (zip or folder); ``off_size`` maps members to (h, w), ``corrupt`` members get junk bytes."""
    off_size = off_size or {}
    files = {}
    for index, member in enumerate(members):
        if member in corrupt:
            files[member] = CORRUPT_BYTES
        else:
            files[member] = encode(scene(*off_size.get(member, (size, size)), seed=index), member)
    files.update({member: CORRUPT_BYTES for member in corrupt if member not in files})
    if as_zip:
        with zipfile.ZipFile(path, 'w') as archive:
            for member, data in files.items():
                archive.writestr(member, data)
    else:
        for member, data in files.items():
            (path / member).parent.mkdir(parents=True, exist_ok=True)
            (path / member).write_bytes(data)
    return path
