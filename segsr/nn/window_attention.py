"""Windowed attention primitives shared by HAT's blocks.

Feature maps are channels-last ``(B, H, W, C)``; windows are ``(B, num_windows, tokens, C)``.
The relative position bias and the shifted-window mask are added into one float mask that goes
to ``torch.nn.functional.scaled_dot_product_attention``; the explicit softmax path computes the
same thing step by step and serves as the reference. Masks and biases are built in the dtype the
attention runs in (autocast's where it is on), so no per-call cast of a large mask is needed.
"""

from collections import OrderedDict

import torch
import torch.nn.functional as F

from segsr.utils.errors import SegSRError

ATTN_IMPLS = ('sdpa', 'explicit')

# Value the published HAT adds to token pairs from different regions of a shifted window.
# Kept (instead of -inf) so outputs match published checkpoints exactly.
SHIFT_MASK_VALUE = -100.0


def check_attn_impl(attn_impl: str) -> str:
    if attn_impl not in ATTN_IMPLS:
        raise SegSRError(f'attn_impl {attn_impl!r} is unknown; use one of {", ".join(ATTN_IMPLS)}')
    return attn_impl


def window_partition(x: torch.Tensor, window_size: int) -> torch.Tensor:
    """(B, H, W, C) -> (B, num_windows, window_size**2, C), windows in row-major order."""
    b, h, w, c = x.shape
    x = x.view(b, h // window_size, window_size, w // window_size, window_size, c)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(b, -1, window_size * window_size, c)


def window_merge(windows: torch.Tensor, window_size: int, h: int, w: int) -> torch.Tensor:
    """Inverse of :func:`window_partition`."""
    b, _, _, c = windows.shape
    x = windows.view(b, h // window_size, w // window_size, window_size, window_size, c)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(b, h, w, c)


def _grid(size: int) -> torch.Tensor:
    """(2, size*size) row and column coordinates of a size x size window, row-major."""
    rows, cols = torch.meshgrid(torch.arange(size), torch.arange(size), indexing='ij')
    return torch.stack((rows.flatten(), cols.flatten()))


def relative_position_index_sa(window_size: int) -> torch.Tensor:
    """(N, N) index into a ((2ws-1)**2)-row bias table for every query/key pair of a window."""
    offsets = _grid(window_size)[:, :, None] - _grid(window_size)[:, None, :] + (window_size - 1)
    return offsets[0] * (2 * window_size - 1) + offsets[1]


def relative_position_index_oca(window_size: int, overlap_window_size: int) -> torch.Tensor:
    """(N, M) index for queries of a window against keys of its enlarged overlapping window.

    Follows the published HAT formula exactly, including its offset of ``ws - ows + 1`` that
    yields some negative indices; torch indexing wraps those, as it does in the published model.
    """
    offsets = _grid(overlap_window_size)[:, None, :] - _grid(window_size)[:, :, None]
    offsets = offsets + (window_size - overlap_window_size + 1)
    return offsets[0] * (window_size + overlap_window_size - 1) + offsets[1]


def gather_bias(table: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """(heads, L, S) bias from a learnable ``(entries, heads)`` table; one indexing op per call."""
    return table[index].permute(2, 0, 1)


def compute_dtype(device: torch.device, parameter_dtype: torch.dtype) -> torch.dtype:
    """The dtype attention runs in on ``device``: autocast's where autocast is on, else the parameters'."""
    if torch.is_autocast_enabled(device.type):
        return torch.get_autocast_dtype(device.type)
    return parameter_dtype


class GatheredBiasCache:
    """One attention layer's gathered relative-position bias, reused while nothing can change it.

    Training gathers afresh every call (gradients must reach the table, and the table changes every
    step). Without autograd in eval mode the gathered bias is kept while the table's storage and
    version counter, the index and the dtype stay the same; ``clear`` is called on every
    ``train()``/``eval()`` switch, which also covers updates made through ``.data`` (as EMA does).
    """

    def __init__(self):
        self._key: tuple | None = None
        self._source: torch.Tensor | None = None
        self._bias: torch.Tensor | None = None

    def get(self, table: torch.Tensor, index: torch.Tensor, dtype: torch.dtype, training: bool) -> torch.Tensor:
        if training or (torch.is_grad_enabled() and table.requires_grad) or torch.compiler.is_compiling():
            return gather_bias(table, index).to(dtype)
        key = (table.data_ptr(), table._version, index.data_ptr(), tuple(index.shape), dtype)
        if key != self._key:
            # Holding the table's storage keeps its address from being reused by a different table.
            self._key, self._source = key, table.detach()
            self._bias = gather_bias(table, index).to(dtype).contiguous()
        return self._bias

    def clear(self) -> None:
        self._key = self._source = self._bias = None


def shifted_window_mask(
    h: int, w: int, window_size: int, shift: int, device: torch.device, dtype: torch.dtype
) -> torch.Tensor:
    """(num_windows, 1, N, N) additive mask that keeps a cyclically shifted window's regions apart.

    After rolling by ``-shift``, the last ``window_size`` rows (and columns) hold up to two
    regions that were not neighbours in the image; pairs from different regions get -100.
    """

    def band(length: int) -> torch.Tensor:
        pos = torch.arange(length, device=device)
        return (pos >= length - window_size).long() + (pos >= length - shift).long()

    region = band(h)[:, None] * 3 + band(w)[None, :]
    region = window_partition(region[None, :, :, None], window_size)[0, :, :, 0]  # (nw, N)
    different = region[:, :, None] != region[:, None, :]
    mask = torch.zeros(different.shape, device=device, dtype=dtype).masked_fill_(different, SHIFT_MASK_VALUE)
    return mask.unsqueeze(1)


class ShiftMaskCache:
    """Shifted-window masks per (height, width, device, dtype), built on the device on first use.

    Least recently used entries are dropped beyond ``max_entries`` so that testing on many
    image sizes does not grow memory without bound.
    """

    def __init__(self, window_size: int, shift: int, max_entries: int = 8):
        self.window_size = window_size
        self.shift = shift
        self.max_entries = max_entries
        self._masks: OrderedDict[tuple, torch.Tensor] = OrderedDict()

    def get(self, h: int, w: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
        if torch.compiler.is_compiling():  # a compiled graph builds the mask itself; no Python-side state
            return shifted_window_mask(h, w, self.window_size, self.shift, device, dtype)
        key = (h, w, torch.device(device), dtype)
        if key in self._masks:
            self._masks.move_to_end(key)
            return self._masks[key]
        mask = shifted_window_mask(h, w, self.window_size, self.shift, device, dtype)
        self._masks[key] = mask
        if len(self._masks) > self.max_entries:
            self._masks.popitem(last=False)
        return mask

    def __len__(self) -> int:
        return len(self._masks)

    def items(self):
        return self._masks.items()

    def clear(self) -> None:
        self._masks.clear()


def windowed_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    mask: torch.Tensor,
    scale: float,
    dropout_p: float = 0.0,
    attn_impl: str = 'sdpa',
) -> torch.Tensor:
    """Attention inside windows with one additive float mask.

    q: (B, nw, heads, L, d); k, v: (B, nw, heads, S, d); mask: (nw or 1, heads, L, S).
    Returns (B, nw, heads, L, d).

    The 5-D tensors are folded to 4-D so fused SDPA kernels apply and the mask broadcasts over
    the batch without being copied: a per-window mask folds windows into the head axis,
    a mask shared by all windows folds windows into the batch axis.
    """
    b, nw, heads, length, d = q.shape
    mask = mask.to(q.dtype)
    if mask.shape[0] == 1:
        fold = (b * nw, heads)
        mask = mask.reshape(1, heads, length, -1)
    else:
        fold = (b, nw * heads)
        mask = mask.reshape(1, nw * heads, length, -1)
    q, k, v = (t.reshape(*fold, t.shape[-2], d) for t in (q, k, v))
    if attn_impl == 'sdpa':
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout_p, scale=scale)
    else:
        attn = torch.softmax(q @ k.transpose(-2, -1) * scale + mask, dim=-1)
        out = F.dropout(attn, dropout_p) @ v
    return out.view(b, nw, heads, length, d)
