"""Spatially disjoint train/val/test splits of rasters: blocks on a grid, a gap between them, one split per block.

Random windows of one scene in both training and test share pixels and their neighbourhoods, which
inflates scores. Here each raster is cut into ``block``-pixel squares separated by ``gap`` unused pixels;
whole blocks go to one split. Training draws its crops inside its blocks; validation and test use the
fixed, non-overlapping ``window``-pixel windows of theirs, so scores repeat.
"""

import os
import random
from dataclasses import dataclass
from pathlib import Path

from segsr.data.raster_files import RasterWindow, list_rasters, raster_header
from segsr.utils.errors import SegSRError
from segsr.utils.files import atomic_write_bytes

SPLITS = ('train', 'val', 'test')


@dataclass(frozen=True)
class SplitPlan:
    block: int
    gap: int
    window: int
    fractions: tuple[float, float, float]
    seed: int = 0
    scale: int = 1

    def check(self) -> None:
        for name in ('block', 'gap', 'window'):
            value = getattr(self, name)
            if value < (0 if name == 'gap' else 1) or value % self.scale:
                raise SegSRError(f'--{name} {value} must be a positive multiple of --scale {self.scale}')
        if self.window > self.block:
            raise SegSRError(f'--window {self.window} is larger than --block {self.block}; lower --window')
        if self.gap < self.window:
            raise SegSRError(f'--gap {self.gap} is narrower than one window ({self.window}); neighbouring blocks of '
                             'different splits would nearly touch: raise --gap')
        if any(share < 0 for share in self.fractions) or abs(sum(self.fractions) - 1) > 1e-6:
            raise SegSRError(f'--fractions {self.fractions} must be three non-negative shares summing to 1')


def grid_blocks(path: str, width: int, height: int, plan: SplitPlan) -> list[RasterWindow]:
    pitch = plan.block + plan.gap
    return [RasterWindow(path, col, row, plan.block, plan.block)
            for row in range(0, height - plan.block + 1, pitch) for col in range(0, width - plan.block + 1, pitch)]


def assign_blocks(blocks: list[RasterWindow], plan: SplitPlan) -> dict[str, list[RasterWindow]]:
    """Shuffled with the seed; val and test get their shares (at least one block each when there are 3+)."""
    order = list(blocks)
    random.Random(plan.seed).shuffle(order)
    counts = [round(share * len(order)) for share in plan.fractions[1:]]
    if len(order) >= 3:
        counts = [max(count, 1) if share > 0 else 0 for count, share in zip(counts, plan.fractions[1:], strict=True)]
    val, test = order[:counts[0]], order[counts[0]:counts[0] + counts[1]]
    return {'train': order[counts[0] + counts[1]:], 'val': val, 'test': test}


def windows_of(block: RasterWindow, window: int) -> list[RasterWindow]:
    offsets = range(0, block.width - window + 1, window), range(0, block.height - window + 1, window)
    return [RasterWindow(block.path, block.col + col, block.row + row, window, window)
            for row in offsets[1] for col in offsets[0]]


def relative_line(window: RasterWindow, base: str) -> str:
    name = os.path.relpath(window.path, base) if base else window.path
    return RasterWindow(name, window.col, window.row, window.width, window.height).line()


def make_raster_splits(source: str, out: str | os.PathLike, plan: SplitPlan) -> dict[str, int]:
    """Write ``train.txt`` (blocks), ``val.txt`` and ``test.txt`` (windows) under ``out``; return line counts.

    Names are relative to ``source`` when it is a folder (use it as ``dataroot_gt``), absolute otherwise.
    """
    plan.check()
    paths = list_rasters(source)
    blocks = []
    for path in paths:
        header = raster_header(path)
        blocks += grid_blocks(path, header.width, header.height, plan)
    if not blocks:
        raise SegSRError(f'no raster in {source} holds one {plan.block}-pixel block; lower --block')
    assigned = assign_blocks(blocks, plan)
    base = source if os.path.isdir(source) else ''
    counts = {}
    for split in SPLITS:
        entries = assigned[split] if split == 'train' else \
            [window for block in assigned[split] for window in windows_of(block, plan.window)]
        lines = [relative_line(entry, base) for entry in entries]
        atomic_write_bytes(Path(out) / f'{split}.txt', ''.join(f'{line}\n' for line in lines).encode('utf-8'))
        counts[split] = len(lines)
    return counts
