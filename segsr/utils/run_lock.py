"""One run per experiment folder: an exclusive ``flock`` that the kernel drops when its process dies."""

import fcntl
import os
from pathlib import Path

from segsr.utils.errors import SegSRError

LOCK_NAME = '.run.lock'


def _refusal(folder: Path, lock_path: Path) -> SegSRError:
    holder = lock_path.read_text(encoding='utf-8', errors='replace').strip() or 'unknown'
    return SegSRError(f'experiment {folder} is in use by another run (PID {holder}); wait for it to end or stop it, '
                      'or train under another name')


class RunLock:
    """The lock on ``<folder>/.run.lock``, which holds the owner's PID for the message of a refused start.

    A killed run leaves the file but not the lock, so nothing stale ever blocks a new start.
    """

    def __init__(self, fd: int, path: Path):
        self.fd = fd
        self.path = path

    @classmethod
    def acquire(cls, folder: Path) -> 'RunLock':
        """Take the lock (creating the folder) or raise the one-line refusal naming the holder's PID."""
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / LOCK_NAME
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise _refusal(folder, path) from None
        os.ftruncate(fd, 0)
        os.write(fd, f'{os.getpid()}\n'.encode())
        return cls(fd, path)

    def release(self) -> None:
        os.close(self.fd)


def refuse_if_locked(folder: Path) -> None:
    """Refuse at once, writing nothing, when a live run holds ``folder``; the real lock is taken later."""
    path = folder / LOCK_NAME
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        raise _refusal(folder, path) from None
    finally:
        os.close(fd)
