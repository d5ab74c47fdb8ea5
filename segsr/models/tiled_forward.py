"""Validation through segsr's tiled engine: the ``tile`` option of HAT's option files.

``tile.tile_size`` LR pixels per tile and ``tile.tile_pad`` LR pixels shared with each neighbour (blended,
half of it extra context), the same geometry as ``segsr-infer --tile/--overlap``. The published HAT
pastes unblended tiles with ``tile_pad`` pixels of context; segsr blends instead, so tile seams do not show.
"""

import numpy as np
import torch
from torch import nn

from segsr.inference.execution.tiling import upscale_tiled
from segsr.utils.errors import SegSRError


def check_tile_options(tile: dict | None) -> tuple[int, int] | None:
    """``(tile_size, tile_pad)`` from the ``tile`` option, or None when it is absent."""
    if tile is None:
        return None
    size, pad = tile.get('tile_size'), tile.get('tile_pad', 0)
    if not isinstance(size, int) or size < 1:
        raise SegSRError(f'tile.tile_size is {size!r}; give a positive number of LR pixels, e.g. tile_size: 256')
    if not isinstance(pad, int) or not 0 <= pad <= size:
        raise SegSRError(f'tile.tile_pad is {pad!r}; give 0 to tile_size ({size}) LR pixels, e.g. tile_pad: 32')
    return size, pad


def tiled_forward(net: nn.Module, lq: torch.Tensor, scale: int, tile: int, overlap: int) -> torch.Tensor:
    """``net`` over ``(B, C, H, W)`` tile by tile, image by image; returns ``(B, C_out, sH, sW)`` float32."""
    height, width = lq.shape[-2:]
    outputs = []
    for image in lq.float().cpu().numpy():
        def read(row0: int, row1: int, col0: int, col1: int, image: np.ndarray = image) -> np.ndarray:
            return image[:, row0:row1, col0:col1]

        def run(tiles: np.ndarray) -> np.ndarray:
            return net(torch.from_numpy(tiles).to(lq.device, lq.dtype)).float().cpu().numpy()

        output = None
        for row, col, block in upscale_tiled(read, height, width, run, scale=scale, tile=tile, overlap=overlap):
            if output is None:
                output = np.empty((block.shape[0], height * scale, width * scale), np.float32)
            output[:, row:row + block.shape[1], col:col + block.shape[2]] = block
        outputs.append(torch.from_numpy(output))
    return torch.stack(outputs).to(lq.device)
