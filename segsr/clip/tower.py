"""The frozen open_clip image tower as SFEM runs it: its storage dtype, float32 norms, resized positions."""

import math

import torch
import torch.nn as nn
import torch.nn.functional as F
from open_clip.transformer import LayerNormFp32

from segsr.utils.errors import SegSRError

TOWER_DTYPES = {'float32': torch.float32, 'float16': torch.float16, 'bfloat16': torch.bfloat16}


def tower_dtype(name: str) -> torch.dtype:
    if name not in TOWER_DTYPES:
        raise SegSRError(f"sfem.dtype is '{name}'; use one of {list(TOWER_DTYPES)}")
    return TOWER_DTYPES[name]


def keep_norms_fp32(tower: nn.Module) -> None:
    """LayerNorms compute in float32 with float32 weights whatever the tower's or autocast's dtype.

    A half-precision LayerNorm loses the small variances of CLIP's residual stream; open_clip's
    ``LayerNormFp32`` (same parameters) upcasts its input and returns the input's dtype.
    """
    for module in tower.modules():
        if isinstance(module, nn.LayerNorm):
            module.float()
            module.__class__ = LayerNormFp32


def interpolate_pos_embed(pos_embed: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
    """Class-token position plus the square patch-position grid resized (bicubic, 2-D) to ``grid``."""
    cls_pos, patch_pos = pos_embed[:1], pos_embed[1:]
    side = math.isqrt(patch_pos.shape[0])
    if (side, side) == grid:
        return pos_embed
    patch_pos = patch_pos.float().reshape(1, side, side, -1).permute(0, 3, 1, 2)
    patch_pos = F.interpolate(patch_pos, size=grid, mode='bicubic', align_corners=False)
    patch_pos = patch_pos.permute(0, 2, 3, 1).reshape(grid[0] * grid[1], -1).to(pos_embed.dtype)
    return torch.cat([cls_pos, patch_pos], dim=0)


def interpolate_pos_embed_1d(pos_embed: torch.Tensor, length: int) -> torch.Tensor:
    """The whole position table (class position included) resized linearly as one 1-D sequence to ``length``.

    What the published SeG-SR code does; it ignores the 2-D layout of the patch grid.
    """
    table = pos_embed.float().t().unsqueeze(0)
    return F.interpolate(table, size=length, mode='linear', align_corners=False)[0].t().to(pos_embed.dtype)


def set_attention_heads(tower: nn.Module, num_heads: int) -> None:
    """Run every block's self-attention with ``num_heads`` heads over the same projections."""
    for block in tower.transformer.resblocks:
        width = block.attn.in_proj_weight.shape[1]
        if width % num_heads:
            raise SegSRError(f'published_compat.clip_num_heads {num_heads} does not divide the CLIP width {width}; '
                             'choose a divisor')
        block.attn.num_heads = num_heads
        if hasattr(block.attn, 'head_dim'):
            block.attn.head_dim = width // num_heads
