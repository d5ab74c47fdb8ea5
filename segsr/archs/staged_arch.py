"""basicsr's EDSR, RCAN and SwinIR as staged backbones: same options, modules and checkpoint keys, plus a stage hook.

EDSR (Lim et al., CVPRW 2017) and RCAN (Zhang et al., ECCV 2018) take any input size; SwinIR
(Liang et al., ICCVW 2021) is padded to its window and cropped back.
"""

import torch
from basicsr.archs.edsr_arch import EDSR
from basicsr.archs.rcan_arch import RCAN
from basicsr.archs.swinir_arch import SwinIR
from basicsr.utils.registry import ARCH_REGISTRY

from segsr.nn.band_mean import RGB_MEAN, BandMean, register_band_mean, resolve_band_mean
from segsr.nn.info import NetworkInfo, check_scale
from segsr.nn.padding import PadsInput
from segsr.nn.staged import StagedResidualBody, StageHook, call_stage_hook
from segsr.utils.errors import SegSRError

SR_UPSAMPLERS = ('pixelshuffle', 'pixelshuffledirect')


def conv_band_mean(arch: str, num_in_ch: int, num_out_ch: int, rgb_mean: BandMean) -> tuple[float, ...]:
    """basicsr's EDSR and RCAN add the input mean back to the output, so they output the bands they take."""
    if num_out_ch != num_in_ch:
        raise SegSRError(f'{arch} num_out_ch {num_out_ch} differs from num_in_ch {num_in_ch}; the network outputs '
                         'the bands it takes: make them equal')
    return resolve_band_mean(rgb_mean, num_in_ch, f'{arch} rgb_mean')


@ARCH_REGISTRY.register()
class StagedEDSR(StagedResidualBody, EDSR):
    """basicsr's ``EDSR`` (same options, modules and checkpoint keys) as a staged backbone.

    EDSR's body is one run of ``num_block`` residual blocks; it is split into ``num_stages``
    near-equal consecutive groups (default 4: 16 blocks -> 4 x 4, 32 -> 4 x 8), and the stage hook
    runs after each group, before ``conv_after_body``. Without a hook the output equals ``EDSR``'s.
    ``num_in_ch`` may be any band count; ``rgb_mean`` then holds one value per band (or one for all;
    default: the RGB mean on 3 bands, 0.5 per band otherwise).
    """

    def __init__(self, num_in_ch: int = 3, num_out_ch: int = 3, num_feat: int = 64, num_block: int = 16,
                 upscale: int = 4, res_scale: float = 1, img_range: float = 255.0, rgb_mean: BandMean = None,
                 num_stages: int = 4):
        check_scale(upscale, 'StagedEDSR')
        mean = conv_band_mean('StagedEDSR', num_in_ch, num_out_ch, rgb_mean)
        super().__init__(num_in_ch, num_out_ch, num_feat, num_block, upscale, res_scale, img_range, RGB_MEAN)
        self.setup_stages(upscale, num_feat, num_block, num_stages, mean)


@ARCH_REGISTRY.register()
class StagedRCAN(StagedResidualBody, RCAN):
    """basicsr's ``RCAN`` (same options, modules and checkpoint keys) as a staged backbone.

    One stage per residual group (``num_stages`` = ``num_group``); the hook runs after each group,
    before ``conv_after_body``. Without a hook the output equals ``RCAN``'s. Bands and ``rgb_mean``
    as in :class:`StagedEDSR`.
    """

    def __init__(self, num_in_ch: int = 3, num_out_ch: int = 3, num_feat: int = 64, num_group: int = 10,
                 num_block: int = 16, squeeze_factor: int = 16, upscale: int = 4, res_scale: float = 1,
                 img_range: float = 255.0, rgb_mean: BandMean = None):
        check_scale(upscale, 'StagedRCAN')
        mean = conv_band_mean('StagedRCAN', num_in_ch, num_out_ch, rgb_mean)
        super().__init__(num_in_ch, num_out_ch, num_feat, num_group, num_block, squeeze_factor, upscale, res_scale,
                         img_range, RGB_MEAN)
        self.setup_stages(upscale, num_feat, num_group, num_group, mean)


@ARCH_REGISTRY.register()
class StagedSwinIR(PadsInput, SwinIR):
    """basicsr's ``SwinIR`` (same options, modules and checkpoint keys) as a staged backbone.

    One stage per residual Swin transformer block (RSTB, ``num_stages = len(depths)``); the hook
    sees the tokens reshaped to (B, embed_dim, Hp, Wp) and runs before the body's final norm.
    Inputs of any size are reflect-padded to a multiple of the window (``pad_multiple``) and the
    output cropped back. Only the SR reconstruction heads are offered: ``upsampler`` is
    ``pixelshuffle`` (classical SR, the default here) or ``pixelshuffledirect`` (lightweight SR).
    ``in_chans`` other than 3 subtract ``band_mean`` (default 0.5 per band; basicsr's SwinIR subtracts
    0 there, which ``band_mean: 0`` reproduces). Without a hook, on window-multiple inputs, the output
    equals ``SwinIR``'s.
    """

    def __init__(self, upscale: int = 2, upsampler: str = 'pixelshuffle', band_mean: BandMean = None, **options):
        if upsampler not in SR_UPSAMPLERS:
            raise SegSRError(f'StagedSwinIR upsampler {upsampler!r} is not supported; use one of {list(SR_UPSAMPLERS)}')
        check_scale(upscale, 'StagedSwinIR')
        super().__init__(upscale=upscale, upsampler=upsampler, **options)
        in_chans = self.conv_first.in_channels
        register_band_mean(self, resolve_band_mean(band_mean, in_chans, 'StagedSwinIR band_mean'))
        # SwinIR shrinks the window to the training patch when the patch is smaller than the window.
        window = self.layers[0].residual_group.blocks[0].window_size
        self.network_info = NetworkInfo(scale=upscale, in_chans=in_chans, out_chans=in_chans, pad_multiple=window,
                                        num_stages=len(self.layers), num_features=self.embed_dim)

    def forward_features(self, x: torch.Tensor, stage_hook: StageHook | None = None) -> torch.Tensor:
        x_size = (x.shape[2], x.shape[3])
        tokens = self.patch_embed(x)
        if self.ape:
            tokens = tokens + self.absolute_pos_embed
        tokens = self.pos_drop(tokens)
        for stage, layer in enumerate(self.layers):
            tokens = layer(tokens, x_size)
            if stage_hook is not None:
                feat = call_stage_hook(stage_hook, stage, self.patch_unembed(tokens, x_size), 'StagedSwinIR')
                tokens = feat.flatten(2).transpose(1, 2)
        return self.patch_unembed(self.norm(tokens), x_size)

    def forward_padded(self, x: torch.Tensor, stage_hook: StageHook | None = None) -> torch.Tensor:
        mean = self.mean.to(x.dtype)
        feat = self.conv_first((x - mean) * self.img_range)
        feat = self.conv_after_body(self.forward_features(feat, stage_hook)) + feat
        if self.upsampler == 'pixelshuffle':
            out = self.conv_last(self.upsample(self.conv_before_upsample(feat)))
        else:
            out = self.upsample(feat)
        return out / self.img_range + mean
