"""Outputs appear complete or not at all: write under a temporary name, then rename."""

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def atomic_path(final: Path) -> Iterator[Path]:
    """Yield a hidden temporary path beside ``final``, keeping its suffix so writers pick the format.

    On success it is renamed onto ``final``; on any error it is removed, so an interrupted run
    never leaves a truncated file under the real name.
    """
    temporary = final.with_name(f'.{final.stem}.partial-{os.getpid()}{final.suffix}')
    try:
        yield temporary
        os.replace(temporary, final)
    finally:
        temporary.unlink(missing_ok=True)
