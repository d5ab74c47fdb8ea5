"""Resource limits checked before the work that would spend the resource, one table for every tool.

Each limit has a default that no sensible input reaches and an environment variable that raises it
(``SEGSR_MAX_IMAGE_PIXELS=400000000 segsr-infer ...``); a refusal names the limit, the value found and
that variable, on one line. Values are read when checked, so a changed environment applies at once.
"""

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from segsr.utils.errors import SegSRError


class LimitExceeded(SegSRError):
    """An input or a setting that would spend more memory, disk or time than a limit allows."""


@dataclass(frozen=True)
class Limit:
    """``variable``: the environment variable that overrides ``default``; ``unit``: what is counted."""

    variable: str
    default: int
    unit: str

    def value(self) -> int:
        text = os.environ.get(self.variable)
        if text is None:
            return self.default
        try:
            value = int(text.replace('_', ''))
        except ValueError:
            value = 0
        if value < 1:
            raise SegSRError(f'{self.variable}={text!r} is not a positive whole number; set it to a count of '
                             f'{self.unit} (default {self.default:,}) or unset it')
        return value

    def check(self, amount: int, subject: str) -> None:
        """Raise :class:`LimitExceeded` when ``amount`` is over the limit; ``subject`` says what was measured."""
        limit = self.value()
        if amount > limit:
            raise LimitExceeded(f'{subject} is {amount:,} {self.unit}, over the limit of {limit:,}; if that is '
                                f'really meant, raise it with the environment variable {self.variable}={amount}')


IMAGE_PIXELS = Limit('SEGSR_MAX_IMAGE_PIXELS', 100_000_000, 'pixels')
"""PNG, JPEG (and other formats decoded whole): width x height read from the header, before decoding."""
SOURCE_FILE_BYTES = Limit('SEGSR_MAX_FILE_BYTES', 512 * 2**20, 'bytes')
"""One source file read whole into memory (a zip member by its declared uncompressed size), before it is read."""
YAML_NODES = Limit('SEGSR_MAX_YAML_NODES', 100_000, 'nodes')
"""An option file with its aliases expanded, before it is built."""
NESTING_DEPTH = Limit('SEGSR_MAX_NESTING', 64, 'levels')
"""Lists and mappings inside one another, in option and results files."""
CALL_PIXELS = Limit('SEGSR_MAX_CALL_PIXELS', 2**24, 'LR pixels')
"""One network call of tiled inference: batch x (tile + 2 overlap)^2."""
BATCH_PIXELS = Limit('SEGSR_MAX_BATCH_PIXELS', 2**26, 'pixels')
"""One training or evaluation batch: batch_size_per_gpu x gt_size^2 (or the batch size alone without a crop)."""
TIFF_BLOCK = Limit('SEGSR_MAX_BLOCKSIZE', 4096, 'pixels')
"""The side of one TIFF block, which GDAL holds in memory per band."""
CALLS_WARNING = Limit('SEGSR_WARN_CALLS', 20_000, 'network calls')
"""An input that takes more network calls than this is announced, with the time it will take, before it starts."""

COMPRESSION_ALLOWANCE = 8
"""Compressed outputs are refused only when even at 1/8 of their raw size they would not fit on the disk."""


def free_bytes(folder: Path) -> int:
    """Free space on the disk of ``folder``, or of the nearest folder above it that exists."""
    existing = Path(folder).absolute()
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    return shutil.disk_usage(existing).free


def check_disk_space(raw_bytes: int, compressed: bool, folder: Path, subject: str) -> str | None:
    """Refuse an output the disk of ``folder`` cannot hold; return a warning when only compression can fit it."""
    free = free_bytes(folder)
    least = raw_bytes // COMPRESSION_ALLOWANCE if compressed else raw_bytes
    if least > free:
        raise LimitExceeded(f'{subject} would need {describe_bytes(least)} or more, and {folder} has '
                            f'{describe_bytes(free)} free: free space or write to a larger disk with --output')
    if raw_bytes > free:
        return (f'{subject} holds {describe_bytes(raw_bytes)} before compression and {folder} has '
                f'{describe_bytes(free)} free: it fits only if it compresses well')
    return None


def describe_bytes(count: int) -> str:
    for unit, size in (('TiB', 2**40), ('GiB', 2**30), ('MiB', 2**20), ('KiB', 2**10)):
        if count >= size:
            return f'{count / size:.1f} {unit}'
    return f'{count} bytes'
