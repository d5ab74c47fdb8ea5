"""Finding the images of a distributed dataset, whether a zip archive or an unpacked folder.

Both layouts are "one folder per class": an image's class is the name of the folder that
holds it, whatever wraps that folder (``UCMerced_LandUse/Images/<class>/...``, ``AID/<Class>/...``).
"""

import functools
import os
import zipfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from segsr.utils.errors import SegSRError
from segsr.utils.limits import SOURCE_FILE_BYTES

IMAGE_EXTENSIONS = frozenset({'.tif', '.tiff', '.jpg', '.jpeg', '.png', '.bmp'})


@dataclass(frozen=True)
class SourceImage:
    member: str
    label: str
    name: str


def _is_image(member: PurePosixPath) -> bool:
    hidden = any(part.startswith('.') or part == '__MACOSX' for part in member.parts)
    return not hidden and member.suffix.lower() in IMAGE_EXTENSIONS


def _members(src: Path) -> list[str]:
    if src.is_dir():
        return [path.relative_to(src).as_posix() for path in src.rglob('*') if path.is_file()]
    if zipfile.is_zipfile(src):
        with zipfile.ZipFile(src) as archive:
            return [info.filename for info in archive.infolist() if not info.is_dir()]
    if src.exists():
        raise SegSRError(f'{src} is neither a zip archive nor a folder; pass the downloaded .zip or its folder')
    raise SegSRError(f'source {src} does not exist; pass the downloaded archive or folder with --src')


def _hr_names(images: list[tuple[str, str, str]]) -> list[str]:
    """Output names are the source stems; where stems repeat across classes, every name gets its class prefix."""
    stems = Counter(stem for _, _, stem in images)
    if max(stems.values()) == 1:
        return [f'{stem}.png' for _, _, stem in images]
    return [f'{label}_{stem}.png' for _, label, stem in images]


def list_images(src: str | Path) -> list[SourceImage]:
    """Every image under ``src``, sorted by member path, with its class and prepared file name."""
    src = Path(src)
    found = []
    for member in sorted(_members(src)):
        path = PurePosixPath(member)
        if not _is_image(path):
            continue
        if len(path.parts) < 2:
            raise SegSRError(f'{member} in {src} is not in a class folder; the source must hold one folder per class')
        found.append((member, path.parent.name, path.stem))
    if not found:
        raise SegSRError(f'no images ({", ".join(sorted(IMAGE_EXTENSIONS))}) found in {src}; check the --src path')
    return [SourceImage(member, label, name) for (member, label, _), name in zip(found, _hr_names(found), strict=True)]


@functools.lru_cache(maxsize=1)
def _open_zip(path: str, pid: int) -> zipfile.ZipFile:
    """Keyed by process id: a forked worker must not share its parent's file offset."""
    return zipfile.ZipFile(path)


def read_member(src: str | Path, member: str) -> bytes:
    """The raw bytes of one image; a zip stays open per process between calls. Its size (a zip member's
    declared size, which is all zipfile will read of it) is checked first, so no member is read whole
    into memory that the limit does not allow."""
    src = Path(src)
    if src.is_dir():
        path = src / member
        SOURCE_FILE_BYTES.check(path.stat().st_size, f'{path}')
        return path.read_bytes()
    archive = _open_zip(str(src), os.getpid())
    SOURCE_FILE_BYTES.check(archive.getinfo(member).file_size, f'{member} in {src} (uncompressed)')
    return archive.read(member)
