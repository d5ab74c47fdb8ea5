"""A folder a run creates, undone when the run fails before it wrote anything worth keeping.

basicsr moves an earlier folder of the same name aside (``<name>_archived_<time>``) before it creates a
fresh one; undoing removes the fresh folder, the parents that were created with it, and moves the
earlier folder back, so a failed start leaves the tree as it found it. Nothing else is touched.
"""

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class FreshFolder:
    path: Path
    created_from: Path
    """The highest folder that did not exist before (``path`` itself or one of its parents)."""
    archived: Path | None
    """Where the earlier folder of this name was moved, if there was one."""
    fresh: bool = True
    """False when ``path`` was there before and was not moved aside: it is not this run's to remove."""

    @classmethod
    def create(cls, path: Path, make: Callable[[], None]) -> 'FreshFolder':
        """Run ``make`` (which creates ``path``, archiving an earlier one) and remember what it changed."""
        path = path.absolute()
        created_from = path
        while not created_from.parent.exists():
            created_from = created_from.parent
        siblings = set(path.parent.glob(f'{path.name}_archived_*')) if path.parent.is_dir() else set()
        existed = path.exists()
        make()
        moved = set(path.parent.glob(f'{path.name}_archived_*')) - siblings if existed else set()
        archived = moved.pop() if len(moved) == 1 else None
        return cls(path, created_from if not existed else path, archived, fresh=not existed or archived is not None)

    def undo(self) -> None:
        if not self.fresh:
            return
        shutil.rmtree(self.path, ignore_errors=True)
        if self.archived is not None and self.archived.is_dir():
            self.archived.rename(self.path)
            return
        folder = self.path.parent
        while folder != self.created_from.parent and folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()
            folder = folder.parent
