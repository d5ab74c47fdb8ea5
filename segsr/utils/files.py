"""Writing files so that an interrupted run never leaves a half-written one behind, nor replaces one by surprise.

Every writer here fills a temporary file beside the real one and publishes it under the real name only
when the write succeeded, so readers see the old file or the whole new one. Temporary files carry one
segsr-specific name (:func:`temporary_path`), so the cleanup of a later run can never take a user's file
for one of them.
"""

import contextlib
import errno
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from segsr.utils.errors import SegSRError

TEMP_MARKER = 'segsr-partial'
TEMP_NAME = re.compile(rf'\.(?P<name>.+)\.{TEMP_MARKER}-(?P<pid>[1-9][0-9]{{0,9}})'
                       r'(\.band-(?P<part>0|[1-9][0-9]{0,5})-of-(?P<parts>[1-9][0-9]{0,5}))?(?P<suffix>(\.[^.]*)?)')
"""``.<final name>.segsr-partial-<pid>[.band-<K>-of-<N>]<final suffix>``: the one name :func:`temporary_path`
makes, for a whole output or for band K of N of one written by several processes."""
MAX_PID = 2**31 - 1
LINK_UNSUPPORTED = (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.ENOSYS, errno.EMLINK)


class OutputExistsError(SegSRError):
    """The final name was taken (by an earlier run, or a concurrent one) and replacing it was not asked for."""

    def __init__(self, path: Path):
        super().__init__(f'output {path} exists: pass --overwrite to replace it, or choose another output')
        self.path = path


def temporary_path(final: Path, pid: int | None = None, part: tuple[int, int] | None = None) -> Path:
    """The hidden temporary name of ``final``: it names its writer's process (so a cleanup can tell whether
    the writer is gone) and keeps the suffix (GDAL, OpenCV and onnx pick the format by it). ``part``
    ``(K, N)`` names band K of N of an output that several processes write."""
    band = '' if part is None else f'.band-{part[0]}-of-{part[1]}'
    return final.with_name(f'.{final.name}.{TEMP_MARKER}-{pid or os.getpid()}{band}{final.suffix}')


def temporary_owner(name: str) -> int | None:
    """The writer's process id if ``name`` is exactly a name :func:`temporary_path` makes, else None."""
    match = TEMP_NAME.fullmatch(name)
    if match is None or match['suffix'] != Path(match['name']).suffix or int(match['pid']) > MAX_PID:
        return None
    if match['part'] is not None and int(match['part']) >= int(match['parts']):
        return None
    return int(match['pid'])


def publish_without_replacing(temporary: Path, final: Path) -> None:
    """Give the finished ``temporary`` the name ``final`` only if no file holds that name, atomically:
    a hard link fails when the name exists, so two runs writing one output cannot replace each other's."""
    try:
        os.link(temporary, final)
    except FileExistsError:
        raise OutputExistsError(final) from None
    except OSError as error:
        if error.errno not in LINK_UNSUPPORTED:
            raise
        # no hard links on this file system (FAT, some network shares): reserve the name, then fill it
        try:
            os.close(os.open(final, os.O_WRONLY | os.O_CREAT | os.O_EXCL))
        except FileExistsError:
            raise OutputExistsError(final) from None
        os.replace(temporary, final)
    temporary.unlink(missing_ok=True)


@contextlib.contextmanager
def _published_on_success(temporary: Path, final: Path, replace: bool) -> Iterator[Path]:
    final.parent.mkdir(parents=True, exist_ok=True)
    try:
        yield temporary
        if replace:
            os.replace(temporary, final)
        else:
            publish_without_replacing(temporary, final)
    finally:
        temporary.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, replace: bool = True) -> Iterator[BinaryIO]:
    """A binary handle on the temporary file of ``path``, synced and published as ``path`` when the block
    succeeds (without ``replace``, only if no file holds that name: see :func:`atomic_path`). The temporary
    name is hidden, so a file left by a killed process is never taken for an input."""
    path = Path(path)
    with _published_on_success(temporary_path(path), path, replace) as temporary:
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


def atomic_write_bytes(path: str | os.PathLike, data: bytes, replace: bool = True) -> None:
    with atomic_open(path, replace) as handle:
        handle.write(data)


def write_text_if_changed(path: str | os.PathLike, text: str) -> bool:
    """Atomically write ``text`` unless the file already holds it, so reruns leave mtimes alone."""
    path = Path(path)
    if path.is_file() and path.read_text(encoding='utf-8') == text:
        return False
    atomic_write_bytes(path, text.encode('utf-8'))
    return True


def atomic_path(final: Path, replace: bool = True) -> contextlib.AbstractContextManager[Path]:
    """A temporary path beside ``final`` for writers that need a file name (GDAL, OpenCV, matplotlib, onnx).

    With ``replace=False`` an existing ``final`` is never replaced: publishing raises
    :class:`OutputExistsError` instead, even when another process created it meanwhile.
    """
    return _published_on_success(temporary_path(final), final, replace)


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by another user
        return True
    return True


def remove_stale_temp_files(folder: str | os.PathLike, recursive: bool = False) -> list[Path]:
    """Remove the temporary files in ``folder`` whose writer process is gone; return the removed paths.

    Only regular files named exactly as :func:`temporary_path` names them are touched, so a user's
    ``survey.2024.tmp`` stays. Subfolders are searched only with ``recursive``, for folders segsr made
    itself (an experiment folder), never for a folder a user shares with segsr.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return []
    removed = []
    for path in folder.rglob('.*') if recursive else folder.iterdir():
        owner = temporary_owner(path.name)
        if owner is not None and path.is_file() and not path.is_symlink() and not _process_alive(owner):
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed
