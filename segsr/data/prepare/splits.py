"""Deterministic per-class splits and the text files that hold them.

Each class is shuffled by its own generator, seeded from (seed, split name, class), so a
class's lists depend on nothing but its own sorted file names. Images are drawn in the
order test, train, val: adding a validation part to a published train/test protocol
leaves that protocol's lists unchanged.
"""

import random
import re
from pathlib import Path

from segsr.data.prepare.specs import SPLIT_PARTS, SplitRule
from segsr.utils.errors import SegSRError
from segsr.utils.files import write_text_if_changed

SHIPPED_ROOT = Path(__file__).resolve().parents[1] / 'splits'

Split = dict[str, list[str]]


def natural_key(name: str) -> list:
    """Sort key that puts ``airport_2`` before ``airport_10``."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r'(\d+)', name)]


def _part_sizes(rule: SplitRule, label: str, available: int) -> dict[str, int]:
    if rule.exact:
        sizes = {'train': int(rule.train), 'val': int(rule.val), 'test': int(rule.test)}
        if sum(sizes.values()) > available:
            raise SegSRError(f'class {label!r} has {available} images but split {rule.name!r} needs '
                             f'{sum(sizes.values())}; check that the archive is complete')
        return sizes
    val, test = (int(available * fraction + 0.5) for fraction in (rule.val, rule.test))
    return {'train': available - val - test, 'val': val, 'test': test}


def make_split(names_by_class: dict[str, list[str]], rule: SplitRule, seed: int) -> Split:
    """Split every class by ``rule``; lists come back grouped by class, naturally sorted within."""
    split: Split = {part: [] for part in SPLIT_PARTS}
    for label in sorted(names_by_class):
        names = sorted(names_by_class[label], key=natural_key)
        sizes = _part_sizes(rule, label, len(names))
        shuffled = random.Random(f'{seed}/{rule.name}/{label}').sample(names, len(names))
        start = 0
        for part in ('test', 'train', 'val'):
            chosen = shuffled[start:start + sizes[part]]
            split[part].extend(sorted(chosen, key=natural_key))
            start += sizes[part]
    return split


def read_split(folder: Path) -> Split:
    split = {}
    for part in SPLIT_PARTS:
        path = folder / f'{part}.txt'
        if not path.is_file():
            raise SegSRError(f'split file {path} is missing; regenerate it with scripts/make_splits.py')
        split[part] = path.read_text(encoding='utf-8').split()
    return split


def write_split(folder: Path, split: Split) -> None:
    """One HR file name per line (basicsr's meta_info_file format); untouched if already equal."""
    for part in SPLIT_PARTS:
        write_text_if_changed(folder / f'{part}.txt', ''.join(f'{name}\n' for name in split[part]))


def shipped_split_dir(dataset: str, split_name: str) -> Path:
    return SHIPPED_ROOT / dataset / split_name
