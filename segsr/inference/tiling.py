"""Overlapping-tile super-resolution that streams a scene band of rows by band of rows.

Geometry, per axis, in LR pixels: the scene is cut into non-overlapping *cores* of ``tile``
pixels. The network sees each core widened by ``overlap`` pixels of context on every side
(reflected about the scene edge where the window leaves the scene). Of the network's
output a tile keeps its core widened by half the overlap, so neighbouring tiles share a
band of ``overlap`` pixels across every core border; there the two outputs are blended
with linear ramps that sum to one. A kept pixel is therefore at least ``overlap // 2``
pixels away from the edge of the window the network saw: for a network whose receptive
radius fits in that margin, tiled output equals untiled output.
"""

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

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

    def window(self, i: int) -> tuple[int, int]:
        """The network's input range: core plus context, in scene coordinates (may leave the scene)."""
        start = i * self.tile
        return start - self.overlap, start + self.tile + self.overlap

    def kept(self, i: int) -> tuple[int, int]:
        """The output range this tile contributes to, clipped to the scene."""
        half = self.overlap // 2
        start = i * self.tile
        low = 0 if i == 0 else start - half
        high = self.extent if i == self.count - 1 else start + self.tile - half + self.overlap
        return low, min(high, self.extent)

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
            fall_start = ((i + 1) * self.tile - self.overlap // 2 - low) * scale
            fall = 1 - ramp[: len(weights) - fall_start]
            weights[fall_start : fall_start + len(fall)] *= fall
        return weights


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
) -> Iterator[tuple[int, np.ndarray]]:
    """Super-resolve a scene tile by tile; yield ``(output_row, strip)`` as output rows become final.

    Strips arrive top to bottom and together cover the whole output, full width. Tiles run in
    raster order, ``batch`` at a time; only the band of output rows still being blended is held,
    so memory grows with tile size and scene width, never with scene height.
    """
    if tile < 1 or not 0 <= overlap <= tile:
        raise ValueError(f'need tile >= 1 and 0 <= overlap <= tile, got tile={tile}, overlap={overlap}')
    rows = AxisPlan.fit(height, tile, overlap)
    cols = AxisPlan.fit(width, tile, overlap)
    tiles = [(r, c) for r in range(rows.count) for c in range(cols.count)]
    canvas: np.ndarray | None = None
    canvas_top = 0
    for first in range(0, len(tiles), batch):
        chunk = tiles[first : first + batch]
        inputs = np.stack([read_window(read, rows.window(r), cols.window(c), height, width) for r, c in chunk])
        outputs = network(inputs)
        for (r, c), output in zip(chunk, outputs, strict=True):
            (y0, y1), (x0, x1) = rows.kept(r), cols.kept(c)
            if canvas is None:
                canvas = np.zeros((output.shape[0], 0, width * scale), dtype=np.float32)
            missing = y1 * scale - canvas_top - canvas.shape[1]
            if missing > 0:
                canvas = np.concatenate([canvas, np.zeros((canvas.shape[0], missing, canvas.shape[2]), np.float32)], 1)
            oy = (y0 - rows.window(r)[0]) * scale
            ox = (x0 - cols.window(c)[0]) * scale
            patch = output[:, oy : oy + (y1 - y0) * scale, ox : ox + (x1 - x0) * scale]
            weight = rows.weights(r, scale)[:, None] * cols.weights(c, scale)[None, :]
            canvas[:, y0 * scale - canvas_top : y1 * scale - canvas_top, x0 * scale : x1 * scale] += patch * weight
        if on_batch is not None:
            on_batch(len(chunk))
        done = first + len(chunk)
        final = rows.kept(tiles[done][0])[0] * scale if done < len(tiles) else height * scale
        if final > canvas_top:
            split = final - canvas_top
            yield canvas_top, canvas[:, :split]
            canvas = canvas[:, split:].copy()
            canvas_top = final
