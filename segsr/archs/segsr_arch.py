"""SEGSR: semantic guidance from CLIP (SFEM -> SLM) modulating every stage of an SR backbone (LMM)."""

from copy import deepcopy
from pathlib import Path

import torch
import torch.nn as nn
from basicsr.utils.registry import ARCH_REGISTRY

from segsr.archs.lmm_arch import LMM
from segsr.archs.sfem_arch import SFEM
from segsr.archs.slm_arch import SLM
from segsr.clip.loader import load_clip
from segsr.nn.info import DescribedNetwork, NetworkInfo
from segsr.nn.padding import PadsInput
from segsr.nn.published_compat import PublishedCompat
from segsr.utils.errors import SegSRError
from segsr.weights.files import load_checkpoint, load_state_dict_checked, select_state_dict

CLIP_SOURCE_KEYS = ('model', 'pretrained', 'quick_gelu', 'mean', 'std')


def build_backbone(options: dict, upscale: int) -> nn.Module:
    """Any registered SR arch with the stage-hook interface (see HAT's docstring and docs/guided_backbones.md)."""
    options = deepcopy(options)
    name = options.pop('type', None)
    if name is None or name not in ARCH_REGISTRY:
        raise SegSRError(f'network_g.backbone.type is {name!r}; give a registered SR arch such as HAT')
    options.setdefault('upscale', upscale)
    if options['upscale'] != upscale:
        raise SegSRError(f"network_g.backbone.upscale {options['upscale']} differs from network_g.upscale {upscale}; "
                         'make them equal')
    backbone = ARCH_REGISTRY.get(name)(**options)
    if not isinstance(backbone, DescribedNetwork) or not backbone.network_info.num_stages:
        staged = f'Staged{name}'
        fix = f'use {staged}' if staged in ARCH_REGISTRY else ('give a backbone whose network_info states num_stages '
                                                               'and num_features, with forward(x, stage_hook)')
        raise SegSRError(f'backbone {name} lacks the stage-hook interface (network_info.num_stages); {fix}')
    return backbone


def backbone_section(backbone: dict | None, flat: dict) -> dict:
    """The backbone options, nested (segsr's form) or written flat beside SEGSR's own keys (published form)."""
    if backbone is not None and flat:
        raise SegSRError(f'network_g has both backbone and backbone keys at its top ({", ".join(sorted(flat))}); '
                         'move those keys under backbone')
    if backbone is None and not flat:
        raise SegSRError('network_g has no backbone options; add a backbone section, e.g. backbone: {type: HAT}')
    return dict(backbone if backbone is not None else flat)


@ARCH_REGISTRY.register()
class SEGSR(PadsInput, nn.Module):
    """A semantically guided SR network: ``backbone`` (e.g. HAT) with one LMM after each of its stages.

    ``backbone.type`` defaults to ``backbone_type`` (HAT here: SEGSR is SeG-SR as published). The
    ``Guided<X>`` subclasses only fix ``backbone_type`` to another staged backbone and refuse others.

    The LR image is padded once to the backbone's ``pad_multiple``; SFEM and SLM compute one
    guidance map per stage on the padded image; the backbone's ``stage_hook`` applies LMM i with
    map i; the output is cropped back to ``upscale`` times the input size. ``sfem``, ``slm`` and
    ``lmm`` are option dicts of those modules (see docs/segsr.md); ``upscale`` is any scale the
    backbone builds (it refuses the others). On a backbone of other than 3 bands, ``sfem.rgb_bands``
    names the three CLIP sees, and the LMMs modulate the features of all bands.
    ``backbone_checkpoint`` loads published weights of the unguided backbone (strictly, for the
    backbone's keys). ``final_norm: false`` drops the backbone's norm after its last stage (the
    published SeG-SR code never applies it); ``published_compat`` reproduces other published
    behaviours (:class:`PublishedCompat`).

    The published SeG-SR option files write the backbone's keys flat in ``network_g`` (``in_chans``,
    ``window_size``, ``depths``...): every key that is not one of SEGSR's own is taken as such a key.
    """

    backbone_type = 'HAT'
    backbone_fixed = False

    def __init__(self, backbone: dict | None = None, sfem: dict | None = None, slm: dict | None = None,
                 lmm: dict | None = None, upscale: int = 4, backbone_checkpoint: str | None = None,
                 final_norm: bool = True, published_compat: dict | None = None, **flat_backbone):
        super().__init__()
        compat = PublishedCompat.from_options(published_compat)
        self.backbone = build_backbone(self._backbone_options(backbone_section(backbone, flat_backbone)), upscale)
        backbone_info = self.backbone.network_info
        if backbone_checkpoint:
            self.load_backbone_checkpoint(backbone_checkpoint)
        if not final_norm:
            self._drop_final_norm()

        sfem, slm = dict(sfem or {}), dict(slm or {})
        text_init = slm.pop('text_init', None)
        clip = load_clip(**{k: sfem[k] for k in CLIP_SOURCE_KEYS if k in sfem}, with_text=bool(text_init))
        self.sfem = SFEM(**sfem, scale=upscale, loaded_clip=clip, compat=compat, in_chans=backbone_info.in_chans,
                         sr_mean=getattr(self.backbone, 'mean', None),
                         sr_img_range=getattr(self.backbone, 'img_range', 1.0))
        self.slm = SLM(self.sfem.embed_dim, backbone_info.num_stages, upscale, self.sfem.patch_size,
                       text_init=text_init, loaded_clip=clip, compat=compat, **slm)
        self.lmm = nn.ModuleList(LMM(backbone_info.num_features, self.slm.num_local, **(lmm or {}))
                                 for _ in range(backbone_info.num_stages))
        self.network_info = NetworkInfo(scale=upscale, in_chans=backbone_info.in_chans,
                                        out_chans=backbone_info.out_chans,
                                        pad_multiple=backbone_info.pad_multiple,
                                        map_stages=(self.slm.num_local,) * backbone_info.num_stages)

    @classmethod
    def _backbone_options(cls, options: dict) -> dict:
        options = {'type': cls.backbone_type, **options}
        if cls.backbone_fixed and options['type'] != cls.backbone_type:
            raise SegSRError(f"network_g.backbone.type is {options['type']!r} but {cls.__name__} guides "
                             f'{cls.backbone_type}; drop backbone.type, or use SEGSR for another backbone')
        return options

    def _drop_final_norm(self) -> None:
        """The last modulated features go to the reconstruction unnormalised, as in the published code."""
        if not isinstance(getattr(self.backbone, 'norm', None), nn.LayerNorm):
            raise SegSRError(f'network_g.final_norm: false needs a backbone with a final LayerNorm (HAT, '
                             f'StagedSwinIR); {type(self.backbone).__name__} has none: remove final_norm')
        self.backbone.norm = nn.Identity()

    def load_backbone_checkpoint(self, path: str | Path) -> None:
        if not Path(path).is_file():
            raise SegSRError(f'backbone checkpoint {path} does not exist; fix network_g.backbone_checkpoint')
        state = select_state_dict(load_checkpoint(path), 'params_ema', path)  # else params, else the file
        fix = 'give network_g.backbone the options the checkpoint was trained with'
        load_state_dict_checked(self.backbone, state, strict=True, source=f'{path} (backbone)', fix=fix)

    def forward_padded(self, x: torch.Tensor, return_maps: bool = False):
        """(B, bands, Hp, Wp) in [0, 1] -> (B, bands, sHp, sWp); with ``return_maps`` also the per-stage guidance maps.

        ``forward(x, return_maps)`` takes any size: it pads to ``pad_multiple`` and crops the image back."""
        image_embedding, patch_embeddings = self.sfem(x)
        maps = self.slm(image_embedding, patch_embeddings, x.shape[-2:])
        out = self.backbone(x, stage_hook=lambda stage, feat: self.lmm[stage](feat, maps[stage]))
        return (out, maps) if return_maps else out

    def merge_lora(self) -> None:
        """Fold the CLIP adapters into the frozen weights for faster inference."""
        self.sfem.merge_lora()
