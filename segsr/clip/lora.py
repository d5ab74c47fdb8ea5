"""Low-rank adapters for a frozen open_clip vision transformer.

The adapters keep the wrapped layers' parameter names (``weight``, ``in_proj_weight``...), so a
tower's checkpoint keys do not change when LoRA is attached, and add ``lora_*`` entries beside them.
"""

import math
from collections.abc import Iterable

import torch
import torch.nn as nn
import torch.nn.functional as F

from segsr.utils.errors import SegSRError

ATTENTION_TARGETS = ('q', 'k', 'v')
PACKED_TARGET = 'qkv'  # one adapter on the packed q/k/v projection, as the published SeG-SR code has
MLP_TARGETS = ('c_fc', 'c_proj')
LORA_TARGETS = ATTENTION_TARGETS + (PACKED_TARGET,) + MLP_TARGETS


class LoRAAdapter(nn.Module):
    """The update ``(alpha / rank) * B(A(dropout(x)))``; B starts at zero so the adapted layer starts unchanged."""

    def __init__(self, in_features: int, out_features: int, rank: int, alpha: float, dropout: float):
        super().__init__()
        self.scaling = alpha / rank
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.lora_A = nn.Parameter(torch.empty(rank, in_features))
        self.lora_B = nn.Parameter(torch.zeros(out_features, rank))
        nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Adapters train in float32 even when the frozen tower runs in half precision.
        delta = F.linear(F.linear(self.dropout(x.to(self.lora_A.dtype)), self.lora_A), self.lora_B)
        return (delta * self.scaling).to(x.dtype)

    def delta_weight(self) -> torch.Tensor:
        return (self.lora_B @ self.lora_A) * self.scaling


class MergeableLoRA(nn.Module):
    """Shared merge bookkeeping: merged weights are saved and loaded as if unmerged."""

    merged: bool

    def __init__(self):
        super().__init__()
        self.merged = False
        self.register_state_dict_post_hook(_save_unmerged)
        self.register_load_state_dict_pre_hook(_unmerge_before_load)

    def _weight_deltas(self) -> Iterable[tuple[torch.Tensor, torch.Tensor]]:
        """Pairs of (slice of a frozen weight, adapter delta of that slice's shape)."""
        raise NotImplementedError

    @torch.no_grad()
    def merge(self) -> None:
        """Fold the adapters into the frozen weight for inference (no extra matmuls)."""
        if not self.merged:
            for weight, delta in self._weight_deltas():
                weight += delta.to(weight.dtype)
            self.merged = True

    @torch.no_grad()
    def unmerge(self) -> None:
        if self.merged:
            for weight, delta in self._weight_deltas():
                weight -= delta.to(weight.dtype)
            self.merged = False


def _save_unmerged(module: MergeableLoRA, state_dict: dict, prefix: str, local_metadata: dict) -> None:
    if module.merged:
        module.unmerge()
        for name, tensor in module.named_parameters(recurse=False):
            if prefix + name in state_dict:
                state_dict[prefix + name] = tensor.detach().clone()
        module.merge()


def _unmerge_before_load(module: MergeableLoRA, *args) -> None:
    module.unmerge()


class LoRALinear(MergeableLoRA):
    """An ``nn.Linear`` (its weight and bias shared, not copied) plus one adapter."""

    def __init__(self, linear: nn.Linear, rank: int, alpha: float, dropout: float):
        super().__init__()
        self.weight = linear.weight
        self.bias = linear.bias
        self.lora = LoRAAdapter(linear.in_features, linear.out_features, rank, alpha, dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.linear(x, self.weight, self.bias)
        return out if self.merged else out + self.lora(x)

    def _weight_deltas(self):
        yield self.weight, self.lora.delta_weight()


class LoRASelfAttention(MergeableLoRA):
    """Drop-in for the ``nn.MultiheadAttention`` of an open_clip block, with adapters on q, k and v.

    ``nn.MultiheadAttention`` packs q, k, v into one ``in_proj_weight`` and calls it inside a fused
    kernel, so the projection is recomputed here: packed frozen projection plus per-target deltas,
    then scaled dot-product attention with the checkpoint's own head count. Target ``qkv`` is one
    adapter on the packed projection instead (its rank is shared by q, k and v).
    """

    def __init__(self, attn: nn.MultiheadAttention, targets: Iterable[str], rank: int, alpha: float, dropout: float):
        super().__init__()
        if not attn._qkv_same_embed_dim or attn.bias_k is not None or attn.add_zero_attn:
            raise SegSRError('LoRA supports plain self-attention blocks only; remove q/k/v from sfem.lora.targets')
        self.num_heads = attn.num_heads
        self.batch_first = attn.batch_first
        self.in_proj_weight = attn.in_proj_weight
        self.in_proj_bias = attn.in_proj_bias
        self.out_proj = attn.out_proj
        self.attn_dropout = attn.dropout
        width = attn.embed_dim
        self.lora = nn.ModuleDict({t: LoRAAdapter(width, 3 * width if t == PACKED_TARGET else width, rank, alpha,
                                                  dropout) for t in targets})

    def forward(self, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, need_weights: bool = False,
                attn_mask: torch.Tensor | None = None) -> tuple[torch.Tensor, None]:
        if key is not query or value is not query:
            raise SegSRError('LoRA attention handles self-attention only (key and value must be the query)')
        x = query if self.batch_first else query.transpose(0, 1)
        packed = F.linear(x, self.in_proj_weight, self.in_proj_bias)
        if not self.merged and PACKED_TARGET in self.lora:
            packed = packed + self.lora[PACKED_TARGET](x)
        q, k, v = packed.chunk(3, dim=-1)
        if not self.merged:
            q, k, v = (t + self.lora[name](x) if name in self.lora else t
                       for name, t in zip('qkv', (q, k, v), strict=True))
        batch, length, width = x.shape
        q, k, v = (t.reshape(batch, length, self.num_heads, -1).transpose(1, 2) for t in (q, k, v))
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask,
                                             dropout_p=self.attn_dropout if self.training else 0.0)
        out = self.out_proj(out.transpose(1, 2).reshape(batch, length, width))
        return (out if self.batch_first else out.transpose(0, 1)), None

    def _weight_deltas(self):
        if PACKED_TARGET in self.lora:
            yield self.in_proj_weight, self.lora[PACKED_TARGET].delta_weight()
        for name, weight in zip('qkv', self.in_proj_weight.chunk(3, dim=0), strict=True):
            if name in self.lora:
                yield weight, self.lora[name].delta_weight()


def check_targets(targets: Iterable[str]) -> tuple[str, ...]:
    targets = tuple(targets)
    unknown = [t for t in targets if t not in LORA_TARGETS]
    if unknown:
        raise SegSRError(f'unknown sfem.lora.targets {unknown}; choose from {list(LORA_TARGETS)}')
    if PACKED_TARGET in targets and set(targets) & set(ATTENTION_TARGETS):
        raise SegSRError(f'sfem.lora.targets {list(targets)} adapt q/k/v twice; give qkv or any of q, k, v, not both')
    return targets


def attach_lora(tower: nn.Module, rank: int = 32, alpha: float = 32, dropout: float = 0.05,
                targets: Iterable[str] = LORA_TARGETS) -> int:
    """Put adapters on every residual block of an open_clip ViT; returns how many layers were adapted.

    The replaced layers keep their frozen parameters (same tensors, same state-dict names).
    """
    targets = check_targets(targets)
    if rank <= 0 or not targets:
        return 0
    attn_targets = [t for t in targets if t in ATTENTION_TARGETS + (PACKED_TARGET,)]
    adapted = 0
    for block in tower.transformer.resblocks:
        if attn_targets:
            if not isinstance(block.attn, nn.MultiheadAttention):
                found = type(block.attn).__name__
                raise SegSRError(f'LoRA on q/k/v needs nn.MultiheadAttention blocks, found {found}; '
                                 'use a standard open_clip ViT model or drop q/k/v from sfem.lora.targets')
            block.attn = LoRASelfAttention(block.attn, attn_targets, rank, alpha, dropout)
            adapted += 1
        for name in MLP_TARGETS:
            if name in targets:
                setattr(block.mlp, name, LoRALinear(getattr(block.mlp, name), rank, alpha, dropout))
                adapted += 1
    return adapted


def lora_modules(module: nn.Module) -> list[MergeableLoRA]:
    return [m for m in module.modules() if isinstance(m, MergeableLoRA)]


def merge_lora(module: nn.Module) -> None:
    for m in lora_modules(module):
        m.merge()


def unmerge_lora(module: nn.Module) -> None:
    for m in lora_modules(module):
        m.unmerge()


def is_lora_parameter_name(name: str) -> bool:
    return name.rsplit('.', 1)[-1] in ('lora_A', 'lora_B')
