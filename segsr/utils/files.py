"""Writing files so that an interrupted run never leaves a half-written one behind.

Every writer here fills a temporary file beside the real one and renames it into place only when
the write succeeded, so readers see the old file or the whole new one.
"""

import contextlib
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from segsr.utils.errors import SegSRError

TEMP_SUFFIX = '.tmp'


@contextlib.contextmanager
def _renamed_on_success(temporary: Path, final: Path) -> Iterator[Path]:
    final.parent.mkdir(parents=True, exist_ok=True)
    try:
        yield temporary
        os.replace(temporary, final)
    finally:
        temporary.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike) -> Iterator[BinaryIO]:
    """A binary handle on ``<path>.tmp``, synced and renamed onto ``path`` when the block succeeds.

    The name (``<name>.<pid>.tmp``) does not end in the real suffix, so a file left by a killed process
    is never taken for an image, and it names its writer, so :func:`remove_stale_temp_files` can tell
    whether that process is gone.
    """
    path = Path(path)
    with _renamed_on_success(path.with_name(f'{path.name}.{os.getpid()}{TEMP_SUFFIX}'), path) as temporary:
        with open(temporary, 'wb') as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())


def write_failure(path: str | os.PathLike, err: BaseException, what: str = 'file', fix: str = '') -> SegSRError:
    """The one-line error of a write that failed (a full disk, a lost mount), with the free space left there."""
    reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    folder = Path(path).absolute().parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    free = shutil.disk_usage(folder).free
    return SegSRError(f'cannot write {what} {path} ({reason}; {free / 2**20:.1f} MiB free on its disk)'
                      + (f'; {fix}' if fix else ''))


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    with atomic_open(path) as handle:
        handle.write(data)


def write_text_if_changed(path: str | os.PathLike, text: str) -> bool:
    """Atomically write ``text`` unless the file already holds it, so reruns leave mtimes alone."""
    path = Path(path)
    if path.is_file() and path.read_text(encoding='utf-8') == text:
        return False
    atomic_write_bytes(path, text.encode('utf-8'))
    return True


def atomic_path(final: Path) -> contextlib.AbstractContextManager[Path]:
    """A hidden temporary path beside ``final`` for writers that need a file name (GDAL, OpenCV, matplotlib).

    It keeps the suffix, because those writers pick the format by it, and the process id, so two
    processes writing the same output do not share it.
    """
    return _renamed_on_success(final.with_name(f'.{final.stem}.partial-{os.getpid()}{final.suffix}'), final)


# The temporary names above: ``<name>.<pid>.tmp`` and ``.<stem>.partial-<pid><suffix>``.
TEMP_NAME_PID = (re.compile(r'.+\.(\d+)\.tmp'), re.compile(r'\..+\.partial-(\d+)(\..*)?'))


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by another user
        return True
    return True


def remove_stale_temp_files(folder: str | os.PathLike) -> list[Path]:
    """Remove, under ``folder``, the temporary files of the writers above whose process is no longer alive.

    Only names these writers make are touched, so a user's own ``*.tmp`` file is left alone.
    Returns the removed paths.
    """
    removed = []
    folder = Path(folder)
    if not folder.is_dir():
        return removed
    for path in folder.rglob('*'):
        match = next((m for pattern in TEMP_NAME_PID if (m := pattern.fullmatch(path.name))), None)
        if match and path.is_file() and not _process_alive(int(match.group(1))):
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed
