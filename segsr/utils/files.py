"""Writing files so that an interrupted run never leaves a half-written one behind."""

import os
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
