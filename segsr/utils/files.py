"""Writing files so that an interrupted run never leaves a half-written one behind.

Every writer here fills a temporary file beside the real one and renames it into place only when
the write succeeded, so readers see the old file or the whole new one.
"""

import contextlib
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

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

    The name does not end in the real suffix, so a file left by a killed process is never taken for
    an image; dataset preparation removes such files on its next run.
    """
    path = Path(path)
    with _renamed_on_success(path.with_name(path.name + TEMP_SUFFIX), path) as temporary:
        with open(temporary, 'wb') as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())


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


PARTIAL_NAME = re.compile(r'^\..+\.partial-(\d+)\.')


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def open_by_any_process(path: Path) -> bool:
    """Whether a live process holds ``path`` open (Linux /proc; elsewhere assumed so, to stay on the safe side)."""
    proc = Path('/proc')
    if not proc.is_dir():
        return True
    target = str(path.resolve())
    for fd_dir in proc.glob('[0-9]*/fd'):
        with contextlib.suppress(OSError):
            if any(os.readlink(fd) == target for fd in fd_dir.iterdir()):
                return True
    return False


def remove_stale_partials(folder: str | os.PathLike) -> list[Path]:
    """Delete temporary files killed processes left in ``folder``: ``.name.partial-PID.ext`` whose PID
    is gone, and ``*.tmp`` that no live process holds open. Returns what was removed."""
    removed = []
    for path in Path(folder).iterdir():
        if not path.is_file():
            continue
        match = PARTIAL_NAME.match(path.name)
        if match:
            stale = int(match.group(1)) != os.getpid() and not pid_alive(int(match.group(1)))
        else:
            stale = path.name.endswith(TEMP_SUFFIX) and not open_by_any_process(path)
        if stale:
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed
