"""HAT (Hybrid Attention Transformer, Chen et al., CVPR 2023) with published-checkpoint naming."""

from collections.abc import Sequence

import torch
from basicsr.archs.arch_util import Upsample
from basicsr.utils.registry import ARCH_REGISTRY
from torch import nn

from segsr.nn.band_mean import BandMean, register_band_mean, resolve_band_mean
from segsr.nn.hat_blocks import (
    AttentionContext,
    AttentionGroup,
    HybridAttentionBlock,
    OverlappingCrossAttentionBlock,
    ResidualHybridAttentionGroup,
    to_channels_first,
    to_channels_last,
)
from segsr.nn.info import NetworkInfo, check_scale
from segsr.nn.padding import PadsInput
from segsr.nn.staged import StageHook, call_stage_hook
from segsr.nn.window_attention import (
    ShiftMaskCache,
    check_attn_impl,
    compute_dtype,
    relative_position_index_oca,
    relative_position_index_sa,
)
from segsr.utils.errors import SegSRError

RPI_BUFFERS = ('relative_position_index_SA', 'relative_position_index_OCA')


def _pair(value: int | Sequence[int]) -> tuple[int, int]:
    return (value, value) if isinstance(value, int) else (int(value[0]), int(value[1]))


class TokenEmbed(nn.Module):
    """(B, C, H, W) features -> channels-last tokens, optionally layer-normed (``patch_embed``)."""

    def __init__(self, dim: int, norm_layer: type[nn.Module] | None):
        super().__init__()
        self.norm = norm_layer(dim) if norm_layer is not None else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(to_channels_last(x))


@ARCH_REGISTRY.register()
class HAT(PadsInput, nn.Module):
    """Hybrid Attention Transformer for single-image super-resolution.

    Constructor options, parameter names and shapes are those of the published HAT, so its
    ``params``/``params_ema`` checkpoints load with ``strict=True`` (with or without the two
    relative-position-index buffers, which are recomputed when absent).

    Differences from the published model:
      * ``forward`` reflect-pads any input size to a multiple of ``window_size`` and crops back;
      * attention runs through ``scaled_dot_product_attention`` (``attn_impl='sdpa'``) or the
        explicit softmax reference (``attn_impl='explicit'``, also settable by ``set_attn_impl``);
      * shifted-window masks are built once per input size on the input's device, in the dtype
        attention runs in (autocast's under autocast), and cached; in eval mode without autograd
        each layer's gathered relative-position bias is cached too (training gathers every step);
      * ``use_checkpoint=True`` recomputes every block in the backward pass while training;
      * only ``upsampler='pixelshuffle'`` (the published default '' builds no reconstruction head);
      * ``in_chans`` bands other than 3 subtract ``band_mean`` (default 0.5 per band; the published
        HAT subtracts 0 there, which ``band_mean: 0`` reproduces); 3 bands keep the RGB mean.

    Interface used by guided networks:
      * ``network_info``: ``num_stages`` is the number of residual groups (RHAGs), ``num_features``
        the channels of the body (= ``embed_dim``), ``pad_multiple`` the ``window_size``.
      * ``forward(x, stage_hook=None)``: ``x`` is (B, in_chans, H, W) in [0, 1]. After residual
        group ``i`` (0-based) the body calls ``feat = stage_hook(i, feat)`` with ``feat`` of shape
        (B, embed_dim, Hp, Wp), Hp and Wp being the padded LR size; the hook must return that shape.
        Without a hook the output equals the published HAT's. Returns (B, in_chans, H*s, W*s).
    """

    def __init__(
        self,
        img_size: int | Sequence[int] = 64,
        patch_size: int | Sequence[int] = 1,
        in_chans: int = 3,
        embed_dim: int = 96,
        depths: Sequence[int] = (6, 6, 6, 6),
        num_heads: Sequence[int] = (6, 6, 6, 6),
        window_size: int = 7,
        compress_ratio: int = 3,
        squeeze_factor: int = 30,
        conv_scale: float = 0.01,
        overlap_ratio: float = 0.5,
        mlp_ratio: float = 4.0,
        qkv_bias: bool = True,
        qk_scale: float | None = None,
        drop_rate: float = 0.0,
        attn_drop_rate: float = 0.0,
        drop_path_rate: float = 0.1,
        norm_layer: type[nn.Module] = nn.LayerNorm,
        ape: bool = False,
        patch_norm: bool = True,
        use_checkpoint: bool = False,
        upscale: int = 2,
        img_range: float = 1.0,
        upsampler: str = 'pixelshuffle',
        resi_connection: str = '1conv',
        attn_impl: str = 'sdpa',
        band_mean: BandMean = None,
    ):
        super().__init__()
        resolution = tuple(s // p for s, p in zip(_pair(img_size), _pair(patch_size), strict=True))
        self._check_options(
            upscale, upsampler, resi_connection, depths, num_heads, embed_dim, window_size, overlap_ratio, resolution
        )
        check_attn_impl(attn_impl)

        self.window_size = window_size
        self.upscale = upscale
        self.upsampler = upsampler
        self.img_range = img_range
        self.embed_dim = embed_dim
        self.network_info = NetworkInfo(scale=upscale, in_chans=in_chans, out_chans=in_chans, pad_multiple=window_size,
                                        num_stages=len(depths), num_features=embed_dim)
        self.ape = ape
        self.patches_resolution = resolution
        register_band_mean(self, resolve_band_mean(band_mean, in_chans, 'HAT band_mean'))

        overlap_window_size = int(window_size * overlap_ratio) + window_size
        self.register_buffer('relative_position_index_SA', relative_position_index_sa(window_size))
        self.register_buffer(
            'relative_position_index_OCA', relative_position_index_oca(window_size, overlap_window_size)
        )
        self.register_load_state_dict_pre_hook(_fill_missing_rpi_buffers)
        # As published: windows shift only when the training patch is larger than one window.
        shift_size = window_size // 2 if min(resolution) > window_size else 0
        self.shift_masks = ShiftMaskCache(window_size, shift_size)

        self.conv_first = nn.Conv2d(in_chans, embed_dim, 3, 1, 1)
        self.patch_embed = TokenEmbed(embed_dim, norm_layer if patch_norm else None)
        if ape:
            self.absolute_pos_embed = nn.Parameter(torch.zeros(1, resolution[0] * resolution[1], embed_dim))
        self.pos_drop = nn.Dropout(drop_rate)

        drop_path = torch.linspace(0, drop_path_rate, sum(depths)).tolist()
        self.layers = nn.ModuleList()
        for stage, (depth, heads) in enumerate(zip(depths, num_heads, strict=True)):
            first = sum(depths[:stage])
            blocks = [
                HybridAttentionBlock(
                    dim=embed_dim,
                    num_heads=heads,
                    window_size=window_size,
                    shift_size=shift_size if i % 2 else 0,
                    compress_ratio=compress_ratio,
                    squeeze_factor=squeeze_factor,
                    conv_scale=conv_scale,
                    mlp_ratio=mlp_ratio,
                    qkv_bias=qkv_bias,
                    qk_scale=qk_scale,
                    drop=drop_rate,
                    attn_drop=attn_drop_rate,
                    drop_path=drop_path[first + i],
                    norm_layer=norm_layer,
                    attn_impl=attn_impl,
                )
                for i in range(depth)
            ]
            overlap_attn = OverlappingCrossAttentionBlock(
                embed_dim, window_size, overlap_ratio, heads, qkv_bias, qk_scale, mlp_ratio, norm_layer, attn_impl
            )
            group = AttentionGroup(blocks, overlap_attn, use_checkpoint)
            self.layers.append(ResidualHybridAttentionGroup(group, embed_dim, resi_connection))
        self.norm = norm_layer(embed_dim)
        self.conv_after_body = nn.Conv2d(embed_dim, embed_dim, 3, 1, 1) if resi_connection == '1conv' else nn.Identity()

        num_feat = 64
        self.conv_before_upsample = nn.Sequential(nn.Conv2d(embed_dim, num_feat, 3, 1, 1), nn.LeakyReLU(inplace=True))
        self.upsample = Upsample(upscale, num_feat)
        self.conv_last = nn.Conv2d(num_feat, in_chans, 3, 1, 1)

        self._init_weights()

    @staticmethod
    def _check_options(
        upscale, upsampler, resi_connection, depths, num_heads, embed_dim, window_size, overlap_ratio, resolution
    ) -> None:
        check_scale(upscale, 'HAT')
        if upsampler != 'pixelshuffle':
            raise SegSRError(f"HAT upsampler {upsampler!r} is not supported; set upsampler: 'pixelshuffle'")
        if resi_connection not in ('1conv', 'identity'):
            raise SegSRError(f"HAT resi_connection {resi_connection!r} is not supported; use '1conv' or 'identity'")
        if len(depths) != len(num_heads):
            raise SegSRError(f'HAT depths {list(depths)} and num_heads {list(num_heads)} must have the same length')
        if any(embed_dim % heads for heads in num_heads):
            raise SegSRError(f'HAT embed_dim {embed_dim} must be divisible by every num_heads {list(num_heads)}')
        if int(window_size * overlap_ratio) % 2:
            raise SegSRError(
                f'HAT overlap window_size*overlap_ratio = {int(window_size * overlap_ratio)} must be even; '
                'change window_size or overlap_ratio'
            )
        if min(resolution) < window_size:
            raise SegSRError(
                f'HAT img_size/patch_size {resolution} is smaller than window_size {window_size}; '
                'raise img_size or lower window_size'
            )

    def _init_weights(self) -> None:
        """Truncated-normal linear weights and bias tables, zero biases, unit LayerNorms."""
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.trunc_normal_(module.weight, std=0.02)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
            elif isinstance(module, nn.LayerNorm):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)
        for name, param in self.named_parameters():
            if name.endswith('relative_position_bias_table') or name == 'absolute_pos_embed':
                nn.init.trunc_normal_(param, std=0.02)

    def set_attn_impl(self, attn_impl: str) -> None:
        """Switch every attention layer between 'sdpa' and the 'explicit' reference."""
        check_attn_impl(attn_impl)
        for module in self.modules():
            if hasattr(module, 'attn_impl'):
                module.attn_impl = attn_impl

    def _attention_context(self, x: torch.Tensor) -> AttentionContext:
        shift_mask = None
        if self.shift_masks.shift and any(len(layer.residual_group.blocks) > 1 for layer in self.layers):
            dtype = compute_dtype(x.device, self.conv_first.weight.dtype)
            shift_mask = self.shift_masks.get(x.shape[-2], x.shape[-1], x.device, dtype)
        return AttentionContext(self.relative_position_index_SA, self.relative_position_index_OCA, shift_mask)

    def _position_embedding(self, h: int, w: int) -> torch.Tensor:
        if (h, w) != self.patches_resolution:
            raise SegSRError(
                f'HAT with ape=True only takes inputs padded to img_size {self.patches_resolution}, '
                f'got {(h, w)}; set ape: false or feed img_size inputs'
            )
        return self.absolute_pos_embed.view(1, h, w, -1)

    def forward_features(self, x: torch.Tensor, stage_hook: StageHook | None = None) -> torch.Tensor:
        """Deep features of the body: (B, embed_dim, Hp, Wp) -> same shape."""
        ctx = self._attention_context(x)
        tokens = self.patch_embed(x)
        if self.ape:
            tokens = tokens + self._position_embedding(*x.shape[-2:])
        tokens = self.pos_drop(tokens)
        for stage, layer in enumerate(self.layers):
            tokens = layer(tokens, ctx)
            if stage_hook is not None:
                tokens = to_channels_last(call_stage_hook(stage_hook, stage, to_channels_first(tokens), 'HAT'))
        return to_channels_first(self.norm(tokens))

    def forward_padded(self, x: torch.Tensor, stage_hook: StageHook | None = None) -> torch.Tensor:
        mean = self.mean.to(x.dtype)
        feat = self.conv_first((x - mean) * self.img_range)
        feat = self.conv_after_body(self.forward_features(feat, stage_hook)) + feat
        out = self.conv_last(self.upsample(self.conv_before_upsample(feat)))
        return out / self.img_range + mean


def _fill_missing_rpi_buffers(module: HAT, state_dict: dict, prefix: str, *args) -> None:
    """Let checkpoints saved without the index buffers load strictly: they are pure functions of the config."""
    for name in RPI_BUFFERS:
        state_dict.setdefault(prefix + name, getattr(module, name))
