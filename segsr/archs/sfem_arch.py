"""SFEM: semantic features of the LR image from a frozen open_clip image tower with LoRA adapters."""

from collections.abc import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
from basicsr.utils.registry import ARCH_REGISTRY
from torch.utils.checkpoint import checkpoint

from segsr.clip.loader import LoadedCLIP, load_clip
from segsr.clip.lora import attach_lora, is_lora_parameter_name, merge_lora, unmerge_lora
from segsr.clip.tower import (
    interpolate_pos_embed,
    interpolate_pos_embed_1d,
    keep_norms_fp32,
    set_attention_heads,
    tower_dtype,
)
from segsr.nn.published_compat import PublishedCompat
from segsr.utils.errors import SegSRError

DEFAULT_LORA = {'rank': 32, 'alpha': 32, 'dropout': 0.05, 'targets': ['q', 'k', 'v', 'c_fc', 'c_proj']}
CLIP_CHANNELS = 3


def clip_bands(rgb_bands: int | Sequence[int] | None, in_chans: int) -> tuple[int, ...] | None:
    """0-based indices of the network's input bands that CLIP sees as red, green and blue (None: all three,
    in order). ``rgb_bands`` numbers bands from 1, as GDAL does; a single band is repeated."""
    if rgb_bands is None:
        if in_chans != CLIP_CHANNELS:
            example = '[3, 2, 1] for bands blue, green, red, ...' if in_chans > CLIP_CHANNELS else '1'
            raise SegSRError(f'network_g.sfem.rgb_bands: missing; the network takes {in_chans} band(s), CLIP sees 3: '
                             f'set rgb_bands to the three it sees as red, green, blue, numbered from 1, or one band to '
                             f'repeat (e.g. rgb_bands: {example})')
        return None
    bands = [rgb_bands] if isinstance(rgb_bands, int) else rgb_bands
    valid = isinstance(bands, Sequence) and len(bands) in (1, CLIP_CHANNELS) and all(
        isinstance(b, int) and not isinstance(b, bool) and 1 <= b <= in_chans for b in bands)
    if not valid:
        raise SegSRError(f'network_g.sfem.rgb_bands is {rgb_bands!r}; give three band numbers (or one) from 1 to '
                         f'{in_chans}, the bands CLIP sees as red, green and blue')
    return tuple(b - 1 for b in bands) * (CLIP_CHANNELS // len(bands))


def display_bounds(display_range: Sequence | None) -> tuple[torch.Tensor, torch.Tensor] | None:
    """Per CLIP channel, the network values shown as black (low) and white (high): ``[low, high]`` for all
    three, or one pair each for red, green and blue (the ``rgb_bands`` in order)."""
    if display_range is None:
        return None

    def is_pair(value) -> bool:
        return isinstance(value, list | tuple) and len(value) == 2 and all(
            isinstance(v, int | float) and not isinstance(v, bool) for v in value) and value[1] > value[0]

    pairs = [display_range] if is_pair(display_range) else display_range
    if not isinstance(pairs, list | tuple) or len(pairs) not in (1, CLIP_CHANNELS) or not all(map(is_pair, pairs)):
        raise SegSRError(f'network_g.sfem.display_range is {display_range!r}; give [low, high] with low < high in '
                         'network units, or three such pairs (red, green, blue)')
    pairs = list(pairs) * (CLIP_CHANNELS // len(pairs))
    low = torch.tensor([float(p[0]) for p in pairs]).view(1, CLIP_CHANNELS, 1, 1)
    high = torch.tensor([float(p[1]) for p in pairs]).view(1, CLIP_CHANNELS, 1, 1)
    return low, high


def rounded_quotient(numerator: int, denominator: int) -> int:
    """``round(numerator / denominator)``, in integers when exact, so symbolic sizes (ONNX export) stay integers."""
    if numerator % denominator == 0:
        return numerator // denominator
    return round(numerator / denominator)


@ARCH_REGISTRY.register()
class SFEM(nn.Module):
    """Global and dense CLIP embeddings of an LR image, both L2-normalised in the joint space.

    The LR image is upsampled bilinearly by ``scale`` (so CLIP sees about the HR size), its size
    snapped to a multiple of the patch size, and normalised with the model's own mean and std.
    The tower is frozen; only the LoRA adapters train. Frozen weights are left out of the state
    dict when they can be rebuilt from ``pretrained`` (``store_frozen: false``, the default).

    Options: ``model`` (open_clip name), ``pretrained`` (tag, file or null), ``quick_gelu``
    (auto/true/false), ``lora`` (rank, alpha, dropout, targets; rank 0 = no adapters), ``dtype``
    of the frozen tower (its LayerNorms always compute in float32), ``grad_checkpointing`` of its
    blocks, ``mean``/``std`` overrides. Without trainable adapters (``lora.rank: 0``) the tower runs
    without autograd bookkeeping even when the rest of the network trains.
    ``loaded_clip`` reuses a model already built by :func:`load_clip` (not a YAML option), ``compat``
    reproduces published behaviours; its ``clip_input`` normalises with the SR network's ``sr_mean``
    and ``sr_img_range`` (given by SEGSR from its backbone) instead of CLIP's mean and std.

    Multispectral input: ``in_chans`` (given by SEGSR from its backbone) bands come in; ``rgb_bands``
    (numbered from 1; required unless there are 3) picks the three CLIP sees, and ``display_range``
    maps network values to CLIP's [0, 1] input (``low`` -> 0, ``high`` -> 1, unclipped) before its
    mean and std. Without them the first three bands go to CLIP as they are.
    """

    def __init__(self, model: str = 'ViT-B-16', pretrained: str | None = 'openai', quick_gelu: str | bool = 'auto',
                 scale: int = 4, lora: dict | None = None, dtype: str = 'float32', store_frozen: bool = False,
                 grad_checkpointing: bool = False, mean: list[float] | None = None, std: list[float] | None = None,
                 rgb_bands: int | Sequence[int] | None = None, display_range: Sequence | None = None,
                 loaded_clip: LoadedCLIP | None = None, compat: PublishedCompat | None = None,
                 in_chans: int = CLIP_CHANNELS, sr_mean: torch.Tensor | None = None, sr_img_range: float = 1.0):
        super().__init__()
        self.compat = compat or PublishedCompat()
        bands = clip_bands(rgb_bands, in_chans)
        bounds = display_bounds(display_range)
        clip = loaded_clip or load_clip(model, pretrained, quick_gelu, mean=mean, std=std)
        self.tower = clip.model.visual
        self.quick_gelu = clip.quick_gelu
        self.scale = scale
        self.grad_checkpointing = grad_checkpointing
        self.patch_size = self.tower.patch_size[0]
        self.embed_dim = self.tower.output_dim
        self.num_heads = self.tower.transformer.resblocks[0].attn.num_heads
        mean, std = torch.tensor(clip.mean).view(1, 3, 1, 1), torch.tensor(clip.std).view(1, 3, 1, 1)
        if self.compat.clip_input:
            if sr_mean is None:
                raise SegSRError('published_compat.clip_input needs the backbone\'s RGB mean; use a backbone '
                                 'with a mean and img_range (HAT, StagedSwinIR) or set clip_input: false')
            if bands is not None or bounds is not None:
                raise SegSRError('published_compat.clip_input reproduces the published 3-band input; drop it, or drop '
                                 'sfem.rgb_bands and sfem.display_range')
            mean, std = sr_mean.detach().float().view(1, 3, 1, 1).clone(), torch.full((1, 3, 1, 1), 1 / sr_img_range)
        if bounds is not None:  # (x - low) / (high - low) in [0, 1], folded into CLIP's (image - mean) / std
            low, high = bounds
            mean, std = low + mean * (high - low), std * (high - low)
        self.register_buffer('mean', mean, persistent=False)
        self.register_buffer('std', std, persistent=False)
        self.register_buffer('band_index', None if bands is None else torch.tensor(bands), persistent=False)

        self.tower.requires_grad_(False)
        self.tower.to(tower_dtype(dtype))
        keep_norms_fp32(self.tower)
        lora_opt = {**DEFAULT_LORA, **(lora or {})}
        unknown = set(lora_opt) - set(DEFAULT_LORA)
        if unknown:
            raise SegSRError(f'unknown sfem.lora keys {sorted(unknown)}; use {sorted(DEFAULT_LORA)}')
        attach_lora(self.tower, **lora_opt)
        if self.compat.clip_num_heads:
            set_attention_heads(self.tower, self.compat.clip_num_heads)
            self.num_heads = self.compat.clip_num_heads
        self.trainable = any(p.requires_grad for p in self.parameters())

        if not store_frozen and clip.weights is not None:
            self._frozen_keys = [f'tower.{k}' for k in self.tower.state_dict() if not is_lora_parameter_name(k)]
            self.register_state_dict_post_hook(_drop_frozen)
            self.register_load_state_dict_pre_hook(_fill_frozen)

    def clip_input_size(self, height: int, width: int) -> tuple[int, int]:
        """``scale`` times the LR size, snapped to the patch size (as published: not snapped, conv1 floors)."""
        if self.compat.clip_input:
            return height * self.scale, width * self.scale
        p = self.patch_size
        return max(1, rounded_quotient(height * self.scale, p)) * p, max(1, rounded_quotient(width * self.scale, p)) * p

    def embed(self, image: torch.Tensor) -> torch.Tensor:
        """Patch tokens with the class token prepended, positions interpolated to the grid, ln_pre."""
        tower = self.tower
        x = tower.conv1(image)
        grid = x.shape[-2:]
        x = x.flatten(2).transpose(1, 2)
        cls = tower.class_embedding.to(x.dtype).expand(x.shape[0], 1, -1)
        x = torch.cat([cls, x], dim=1)
        if self.compat.clip_pos_embed_1d:
            positions = interpolate_pos_embed_1d(tower.positional_embedding, x.shape[1])
        else:
            positions = interpolate_pos_embed(tower.positional_embedding, tuple(grid))
        return tower.ln_pre(x + positions.to(x.dtype))

    def forward(self, lr: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Returns the global embedding (B, C) and the dense patch embeddings (B, C, gh, gw)."""
        size = self.clip_input_size(*lr.shape[-2:])
        if self.band_index is not None:
            lr = lr.index_select(1, self.band_index)
        image = F.interpolate(lr, size=size, mode='bilinear', align_corners=False)
        image = ((image - self.mean) / self.std).to(self.tower.conv1.weight.dtype)
        track = torch.is_grad_enabled() and self.trainable
        with torch.set_grad_enabled(track):
            x = self.embed(image)
            for block in self.tower.transformer.resblocks:
                x = checkpoint(block, x, use_reentrant=False) if track and self.grad_checkpointing else block(x)
            x = self.tower.ln_post(x)
            if self.compat.global_from_first_patch:  # the published tower normalises that token a second time
                x = torch.cat([self.tower.ln_post(x[:, 1:2]), x[:, 1:]], dim=1)
            x = x @ self.tower.proj
        x = F.normalize(x.float(), dim=-1)
        grid_h, grid_w = size[0] // self.patch_size, size[1] // self.patch_size
        dense = x[:, 1:].transpose(1, 2).reshape(x.shape[0], -1, grid_h, grid_w)
        return x[:, 0], dense

    def merge_lora(self) -> None:
        merge_lora(self.tower)

    def unmerge_lora(self) -> None:
        unmerge_lora(self.tower)


def _drop_frozen(module: SFEM, state_dict: dict, prefix: str, local_metadata: dict) -> None:
    for key in module._frozen_keys:
        state_dict.pop(prefix + key, None)


def _fill_frozen(module: SFEM, state_dict: dict, prefix: str, *args) -> None:
    """Frozen weights absent from a checkpoint keep the values rebuilt from their source."""
    module.unmerge_lora()
    current = {f'tower.{k}': v for k, v in module.tower.state_dict(keep_vars=True).items()}
    for key in module._frozen_keys:
        state_dict.setdefault(prefix + key, current[key].detach())
