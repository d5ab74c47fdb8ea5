"""Writing files so that an interrupted run never leaves a half-written one behind."""

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

TEMP_SUFFIX = '.tmp'


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write to ``<path>.tmp`` and rename over ``path``: readers see the old file or the whole new one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(path.name + TEMP_SUFFIX)
    with open(temp, 'wb') as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temp, path)


def write_text_if_changed(path: str | os.PathLike, text: str) -> bool:
    """Atomically write ``text`` unless the file already holds it, so reruns leave mtimes alone."""
    path = Path(path)
    if path.is_file() and path.read_text(encoding='utf-8') == text:
        return False
    atomic_write_bytes(path, text.encode('utf-8'))
    return True


@contextlib.contextmanager
def atomic_path(final: Path) -> Iterator[Path]:
    """Yield a hidden temporary path beside ``final`` for a writer that needs a file name (GDAL, matplotlib).

    It keeps the suffix so writers pick the format. On success it is renamed onto ``final``; on
    any error it is removed, so an interrupted run never leaves a truncated file under the real name.
    """
    temporary = final.with_name(f'.{final.stem}.partial-{os.getpid()}{final.suffix}')
    try:
        yield temporary
        os.replace(temporary, final)
    finally:
        temporary.unlink(missing_ok=True)
