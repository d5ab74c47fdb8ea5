"""Building blocks of HAT (Hybrid Attention Transformer), on channels-last ``(B, H, W, C)`` maps.

Attribute names follow the published HAT so its checkpoints load unchanged:
``attn.relative_position_bias_table``, ``conv_block.cab.N``, ``overlap_attn.qkv`` and so on.
"""

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from basicsr.archs.rcan_arch import ChannelAttention
from basicsr.archs.swinir_arch import Mlp
from torch import nn
from torch.utils import checkpoint
from torchvision.ops import StochasticDepth

from segsr.nn.window_attention import (
    GatheredBiasCache,
    check_attn_impl,
    window_merge,
    window_partition,
    windowed_attention,
)


def merge_heads(out: torch.Tensor) -> torch.Tensor:
    """(B, nw, heads, L, d) -> (B, nw, L, heads * d), head-major along channels.

    Concatenation rather than ``transpose(2, 3).reshape``: with symbolic sizes (ONNX export) torch.export
    drops the copy that reshape needs, and the graph then fails to build.
    """
    return torch.cat(out.unbind(2), dim=-1)


@dataclass
class AttentionContext:
    """Per-forward tensors every block of the body shares (all on the input's device)."""

    rpi_sa: torch.Tensor
    rpi_oca: torch.Tensor
    shift_mask: torch.Tensor | None


def to_channels_first(x: torch.Tensor) -> torch.Tensor:
    return x.permute(0, 3, 1, 2)


def to_channels_last(x: torch.Tensor) -> torch.Tensor:
    return x.permute(0, 2, 3, 1)


class ChannelAttentionBlock(nn.Module):
    """The convolutional branch of a hybrid block: two 3x3 convs and RCAN channel attention."""

    def __init__(self, dim: int, compress_ratio: int, squeeze_factor: int):
        super().__init__()
        hidden = dim // compress_ratio
        self.cab = nn.Sequential(
            nn.Conv2d(dim, hidden, 3, 1, 1),
            nn.GELU(),
            nn.Conv2d(hidden, dim, 3, 1, 1),
            ChannelAttention(dim, squeeze_factor),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.cab(x)


class CachedBiasMixin:
    """Keeps a :class:`GatheredBiasCache` that forgets its bias whenever the module switches mode."""

    bias_cache: GatheredBiasCache

    def train(self, mode: bool = True):
        self.bias_cache.clear()
        return super().train(mode)

    def relative_bias(self, index: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        """(1, heads, L, S) bias of this layer in ``dtype``."""
        return self.bias_cache.get(self.relative_position_bias_table, index, dtype, self.training).unsqueeze(0)


class WindowSelfAttention(CachedBiasMixin, nn.Module):
    """Multi-head self-attention inside each window with a learned relative position bias."""

    def __init__(
        self,
        dim: int,
        window_size: int,
        num_heads: int,
        qkv_bias: bool = True,
        qk_scale: float | None = None,
        attn_drop: float = 0.0,
        proj_drop: float = 0.0,
        attn_impl: str = 'sdpa',
    ):
        super().__init__()
        self.num_heads = num_heads
        self.scale = qk_scale or (dim // num_heads) ** -0.5
        self.attn_drop = attn_drop
        self.attn_impl = check_attn_impl(attn_impl)
        self.relative_position_bias_table = nn.Parameter(torch.zeros((2 * window_size - 1) ** 2, num_heads))
        self.bias_cache = GatheredBiasCache()
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(proj_drop)

    def forward(self, windows: torch.Tensor, rpi: torch.Tensor, shift_mask: torch.Tensor | None = None) -> torch.Tensor:
        """windows: (B, nw, N, C); rpi: (N, N); shift_mask: (nw, 1, N, N) or None."""
        b, nw, n, c = windows.shape
        qkv = self.qkv(windows).view(b, nw, n, 3, self.num_heads, c // self.num_heads)
        q, k, v = qkv.permute(3, 0, 1, 4, 2, 5)
        mask = self.relative_bias(rpi, q.dtype)
        if shift_mask is not None:
            mask = shift_mask.to(q.dtype) + mask
        dropout_p = self.attn_drop if self.training else 0.0
        out = windowed_attention(q, k, v, mask, self.scale, dropout_p, self.attn_impl)
        return self.proj_drop(self.proj(merge_heads(out)))


class HybridAttentionBlock(nn.Module):
    """HAB: (shifted) window attention plus a scaled channel-attention conv branch, then an MLP."""

    def __init__(
        self,
        dim: int,
        num_heads: int,
        window_size: int,
        shift_size: int,
        compress_ratio: int,
        squeeze_factor: int,
        conv_scale: float,
        mlp_ratio: float,
        qkv_bias: bool,
        qk_scale: float | None,
        drop: float,
        attn_drop: float,
        drop_path: float,
        norm_layer: type[nn.Module],
        attn_impl: str,
    ):
        super().__init__()
        self.window_size = window_size
        self.shift_size = shift_size
        self.conv_scale = conv_scale
        self.norm1 = norm_layer(dim)
        self.attn = WindowSelfAttention(dim, window_size, num_heads, qkv_bias, qk_scale, attn_drop, drop, attn_impl)
        self.conv_block = ChannelAttentionBlock(dim, compress_ratio, squeeze_factor)
        self.drop_path = StochasticDepth(drop_path, mode='row')
        self.norm2 = norm_layer(dim)
        self.mlp = Mlp(in_features=dim, hidden_features=int(dim * mlp_ratio), act_layer=nn.GELU, drop=drop)

    def forward(self, x: torch.Tensor, ctx: AttentionContext) -> torch.Tensor:
        _, h, w, _ = x.shape
        shift = self.shift_size
        y = self.norm1(x)
        conv = to_channels_last(self.conv_block(to_channels_first(y)))
        if shift:
            y = torch.roll(y, shifts=(-shift, -shift), dims=(1, 2))
        windows = self.attn(window_partition(y, self.window_size), ctx.rpi_sa, ctx.shift_mask if shift else None)
        y = window_merge(windows, self.window_size, h, w)
        if shift:
            y = torch.roll(y, shifts=(shift, shift), dims=(1, 2))
        x = x + self.drop_path(y) + conv * self.conv_scale
        return x + self.drop_path(self.mlp(self.norm2(x)))


class OverlappingCrossAttentionBlock(CachedBiasMixin, nn.Module):
    """OCAB: queries from each window attend to keys/values of a larger, overlapping window."""

    def __init__(
        self,
        dim: int,
        window_size: int,
        overlap_ratio: float,
        num_heads: int,
        qkv_bias: bool,
        qk_scale: float | None,
        mlp_ratio: float,
        norm_layer: type[nn.Module],
        attn_impl: str,
    ):
        super().__init__()
        self.window_size = window_size
        self.overlap_window_size = int(window_size * overlap_ratio) + window_size
        self.num_heads = num_heads
        self.scale = qk_scale or (dim // num_heads) ** -0.5
        self.attn_impl = check_attn_impl(attn_impl)
        self.norm1 = norm_layer(dim)
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.relative_position_bias_table = nn.Parameter(
            torch.zeros((window_size + self.overlap_window_size - 1) ** 2, num_heads)
        )
        self.bias_cache = GatheredBiasCache()
        self.proj = nn.Linear(dim, dim)
        self.norm2 = norm_layer(dim)
        self.mlp = Mlp(in_features=dim, hidden_features=int(dim * mlp_ratio), act_layer=nn.GELU)

    def _key_value_windows(self, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, H, W, C) keys and values -> two (B, nw, heads, ows**2, d) overlapping windows."""
        b, _, _, c = k.shape
        ws, ows = self.window_size, self.overlap_window_size
        kv = F.unfold(to_channels_first(torch.cat((k, v), dim=-1)), ows, stride=ws, padding=(ows - ws) // 2)
        kv = kv.view(b, 2, self.num_heads, c // self.num_heads, ows * ows, -1)
        k, v = kv.permute(1, 0, 5, 2, 4, 3)
        return k, v

    def forward(self, x: torch.Tensor, ctx: AttentionContext) -> torch.Tensor:
        b, h, w, c = x.shape
        ws = self.window_size
        q, k, v = self.qkv(self.norm1(x)).chunk(3, dim=-1)
        q = window_partition(q, ws)
        q = q.view(*q.shape[:3], self.num_heads, c // self.num_heads).transpose(2, 3)
        k, v = self._key_value_windows(k, v)
        mask = self.relative_bias(ctx.rpi_oca, q.dtype)
        out = windowed_attention(q, k, v, mask, self.scale, 0.0, self.attn_impl)
        out = window_merge(merge_heads(out), ws, h, w)
        x = self.proj(out) + x
        return x + self.mlp(self.norm2(x))


class AttentionGroup(nn.Module):
    """The blocks of one residual group: ``depth`` HABs (every second one shifted) and one OCAB."""

    def __init__(
        self,
        blocks: list[HybridAttentionBlock],
        overlap_attn: OverlappingCrossAttentionBlock,
        use_checkpoint: bool,
    ):
        super().__init__()
        self.blocks = nn.ModuleList(blocks)
        self.overlap_attn = overlap_attn
        self.use_checkpoint = use_checkpoint

    def forward(self, x: torch.Tensor, ctx: AttentionContext) -> torch.Tensor:
        recompute = self.use_checkpoint and self.training and torch.is_grad_enabled()
        for block in (*self.blocks, self.overlap_attn):
            x = checkpoint.checkpoint(block, x, ctx, use_reentrant=False) if recompute else block(x, ctx)
        return x


class ResidualHybridAttentionGroup(nn.Module):
    """RHAG: an attention group, a 3x3 conv (or identity) and a residual connection."""

    def __init__(self, residual_group: AttentionGroup, dim: int, resi_connection: str):
        super().__init__()
        self.residual_group = residual_group
        self.conv = nn.Conv2d(dim, dim, 3, 1, 1) if resi_connection == '1conv' else nn.Identity()

    def forward(self, x: torch.Tensor, ctx: AttentionContext) -> torch.Tensor:
        y = self.residual_group(x, ctx)
        return to_channels_last(self.conv(to_channels_first(y))) + x
