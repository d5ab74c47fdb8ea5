"""Overlapping-tile super-resolution that hands out finished output blocks as soon as they are final.

Geometry, per axis, in LR pixels: the scene is cut into *cells* of ``tile`` pixels. Tile ``i``
is responsible for cell ``i`` and also covers the first ``overlap`` pixels of cell ``i + 1``;
that shared band is blended with linear ramps that sum to one. The network sees the covered
range widened by ``overlap / 2`` pixels of context on each side (reflected about the scene edge
where it leaves the scene), so a kept pixel is at least ``overlap // 2`` pixels from the edge of
the window the network saw: for a network whose receptive radius fits in that margin, tiled
output equals untiled output.

Cell ``(r, c)`` receives output only from tiles ``(r - 1 .. r, c - 1 .. c)``, so it is final as
soon as tile ``(r, c)`` has run, in row-major and column-major order alike. Only the shared bands
waiting for their second tile are held between tiles. Cell borders fall on multiples of
``tile * scale`` output pixels, so a writer whose blocks divide that size never gets a partial block.
"""

from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

from segsr.inference.execution.pipeline import prefetched

ReadRect = Callable[[int, int, int, int], np.ndarray]
"""``read(row0, row1, col0, col1) -> (C, row1 - row0, col1 - col0)`` for a rectangle inside the scene."""

Network = Callable[[np.ndarray], np.ndarray]
"""``(B, C, h, w) -> (B, C_out, h * scale, w * scale)``."""


@dataclass(frozen=True)
class AxisPlan:
    """Tile positions along one axis of the scene."""

    extent: int
    tile: int
    overlap: int

    @classmethod
    def fit(cls, extent: int, tile: int, overlap: int) -> 'AxisPlan':
        """Shrink the tile to the scene so a small image is not padded up to a whole tile."""
        return cls(extent, min(tile, extent), overlap)

    @property
    def count(self) -> int:
        return -(-self.extent // self.tile)

    def cell(self, i: int) -> tuple[int, int]:
        """The range that is final once tile ``i`` has run."""
        return i * self.tile, min((i + 1) * self.tile, self.extent)

    def kept(self, i: int) -> tuple[int, int]:
        """The range tile ``i`` contributes to: its cell and the start of the next, clipped to the scene."""
        return i * self.tile, min((i + 1) * self.tile + self.overlap, self.extent)

    def window(self, i: int) -> tuple[int, int]:
        """The network's input range: ``kept`` with context on each side (may leave the scene).

        Every window has the same length, ``tile + 2 * overlap``, so tiles can be batched.
        """
        start = i * self.tile - self.overlap // 2
        return start, start + self.tile + 2 * self.overlap

    def weights(self, i: int, scale: int) -> np.ndarray:
        """Blend weights over ``kept(i)`` at output resolution: ramps in shared bands, one elsewhere."""
        low, high = self.kept(i)
        weights = np.ones((high - low) * scale, dtype=np.float32)
        band = self.overlap * scale
        if band == 0:
            return weights
        ramp = (np.arange(band, dtype=np.float32) + 0.5) / band
        if i > 0:
            rise = ramp[: len(weights)]
            weights[: len(rise)] *= rise
        if i < self.count - 1:
            fall = 1 - ramp[: len(weights) - self.tile * scale]
            weights[self.tile * scale :] *= fall
        return weights

    def parts(self, i: int) -> list[tuple[int, int, int]]:
        """``(cell, start, stop)``: how ``kept(i)`` splits into cells, relative to ``kept(i)``.

        Each part starts at the origin of its cell: the first is cell ``i`` itself, the second the
        band that spills into cell ``i + 1``.
        """
        low, high = self.kept(i)
        split = self.cell(i)[1] - low
        return [(i, 0, split)] + ([(i + 1, split, high - low)] if high - low > split else [])


def reflect_indices(start: int, stop: int, size: int) -> np.ndarray:
    """Scene indices for ``range(start, stop)``, reflected about the scene edges (as ``np.pad`` 'reflect')."""
    indices = np.arange(start, stop)
    if size == 1:
        return np.zeros_like(indices)
    period = 2 * (size - 1)
    indices = np.mod(indices, period)
    return np.where(indices >= size, period - indices, indices)


def read_window(read: ReadRect, rows: tuple[int, int], cols: tuple[int, int], height: int, width: int) -> np.ndarray:
    """Read a window that may leave the scene: read the scene rectangle it touches, then reflect."""
    row_idx = reflect_indices(*rows, height)
    col_idx = reflect_indices(*cols, width)
    r0, c0 = row_idx.min(), col_idx.min()
    rect = read(r0, row_idx.max() + 1, c0, col_idx.max() + 1)
    return rect[:, row_idx - r0][:, :, col_idx - c0]


def count_tiles(height: int, width: int, tile: int, overlap: int) -> int:
    """How many network calls (tiles) a scene takes, for progress reporting."""
    return AxisPlan.fit(height, tile, overlap).count * AxisPlan.fit(width, tile, overlap).count


def tile_rows(height: int, tile: int, overlap: int) -> int:
    """How many rows of tiles cover a scene: the finest unit a scene can be split into across processes."""
    return AxisPlan.fit(height, tile, overlap).count


def band_extent(height: int, tile: int, overlap: int, rows: tuple[int, int]) -> tuple[int, int]:
    """The LR rows ``[start, stop)`` whose output the tile rows ``rows`` finish."""
    plan = AxisPlan.fit(height, tile, overlap)
    return plan.cell(rows[0])[0], plan.cell(rows[1] - 1)[1]


def tile_order(rows: AxisPlan, cols: AxisPlan) -> list[tuple[int, int]]:
    """Along the longer side first, so the bands awaiting their second tile span the shorter side."""
    if cols.extent > rows.extent:
        return [(r, c) for c in range(cols.count) for r in range(rows.count)]
    return [(r, c) for r in range(rows.count) for c in range(cols.count)]


def upscale_tiled(
    read: ReadRect,
    height: int,
    width: int,
    network: Network,
    *,
    scale: int,
    tile: int,
    overlap: int,
    batch: int = 1,
    on_batch: Callable[[int], None] | None = None,
    band: tuple[int, int] | None = None,
    read_ahead: bool = False,
) -> Iterator[tuple[int, int, np.ndarray]]:
    """Super-resolve a scene tile by tile; yield ``(output_row, output_col, block)`` for each final cell.

    The blocks tile the whole output once. With ``band``, tile rows ``[start, stop)``, only their cells are made (a
    band of the scene for one of several processes): the row above is run too, for the shared band it
    blends into the first row, and tiles run in the whole scene's order, so every sum is formed in the same
    order and the band is bit-identical to the same rows of a whole run. ``read_ahead`` reads the next
    batches' windows on a reader thread while the network runs.

    Besides the network's activations for ``batch`` windows, memory holds only the shared bands still
    waiting for their second tile: about ``overlap * scale`` output pixels across the scene's shorter side.
    """
    if tile < 1 or not 0 <= overlap <= tile:
        raise ValueError(f'need tile >= 1 and 0 <= overlap <= tile, got tile={tile}, overlap={overlap}')
    rows = AxisPlan.fit(height, tile, overlap)
    cols = AxisPlan.fit(width, tile, overlap)
    first_row, stop_row = band or (0, rows.count)
    tiles = [(r, c) for r, c in tile_order(rows, cols) if max(first_row - 1, 0) <= r < stop_row]
    batches = (
        (chunk, np.stack([read_window(read, rows.window(r), cols.window(c), height, width) for r, c in chunk]))
        for chunk in (tiles[first : first + batch] for first in range(0, len(tiles), batch))
    )
    waiting: dict[tuple[int, int], list[np.ndarray]] = defaultdict(list)
    for chunk, inputs in prefetched(batches) if read_ahead else batches:
        outputs = network(inputs)
        if on_batch is not None:
            on_batch(len(chunk))
        for (r, c), output in zip(chunk, outputs, strict=True):
            (y0, y1), (x0, x1) = rows.kept(r), cols.kept(c)
            oy = (y0 - rows.window(r)[0]) * scale
            ox = (x0 - cols.window(c)[0]) * scale
            weight = rows.weights(r, scale)[:, None] * cols.weights(c, scale)[None, :]
            weighted = output[:, oy : oy + (y1 - y0) * scale, ox : ox + (x1 - x0) * scale] * weight
            for cell_r, a, b in rows.parts(r):
                for cell_c, d, e in cols.parts(c):
                    if (cell_r, cell_c) != (r, c):  # copied, so that this tile's array can be freed
                        waiting[cell_r, cell_c].append(weighted[:, a * scale : b * scale, d * scale : e * scale].copy())
            (top, bottom), (left, right) = rows.cell(r), cols.cell(c)
            own = weighted[:, : (bottom - top) * scale, : (right - left) * scale]
            if r < first_row:
                waiting.pop((r, c), None)
                continue
            yield top * scale, left * scale, settle(own, waiting.pop((r, c), []))


def settle(own: np.ndarray, earlier: list[np.ndarray]) -> np.ndarray:
    """A cell's own tile output plus the bands earlier tiles spilled into it, all placed at its origin."""
    for part in earlier:
        own[:, : part.shape[1], : part.shape[2]] += part
    return own
