"""basicsr's own datasets name the file that fails to read mid-run, as segsr's do.

basicsr decodes with ``cv2.imdecode`` and calls ``.astype`` on the result, so a file that is damaged
after the pre-run check ends in ``AttributeError: 'NoneType' object has no attribute 'astype'``.
Their ``__getitem__`` is wrapped once, at import: the files of the failing item are re-read header by
header and the broken one is named.
"""

import functools

import cv2
from basicsr.data.paired_image_dataset import PairedImageDataset
from basicsr.data.single_image_dataset import SingleImageDataset

from segsr.data.image_files import REPLACE_FIX, BadImageFile, read_header

DECODE_FAILURES = (AttributeError, TypeError, cv2.error, OSError)


def item_files(dataset, index: int) -> list[str]:
    entry = dataset.paths[index]
    if isinstance(entry, dict):
        return [str(path) for key, path in entry.items() if key.endswith('_path')]
    return [str(entry)]


def read_failure(dataset, index: int, error: Exception) -> BadImageFile:
    """The one-line error for item ``index``: the first of its files whose header check fails."""
    files = item_files(dataset, index)
    for path in files:
        try:
            read_header(path)
        except BadImageFile as bad:
            return bad
    return BadImageFile(f'reading {", ".join(files)} failed ({type(error).__name__}: {error}); {REPLACE_FIX}')


def name_read_failures(dataset_class: type) -> None:
    getitem = dataset_class.__getitem__
    if getattr(getitem, 'names_read_failures', False):
        return

    @functools.wraps(getitem)
    def checked_getitem(self, index):
        try:
            return getitem(self, index)
        except DECODE_FAILURES as error:
            raise read_failure(self, index, error) from None

    checked_getitem.names_read_failures = True
    dataset_class.__getitem__ = checked_getitem


for _dataset_class in (PairedImageDataset, SingleImageDataset):
    name_read_failures(_dataset_class)
