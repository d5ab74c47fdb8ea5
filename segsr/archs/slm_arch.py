"""SLM: learned prompts in CLIP's joint space turned into per-stage guidance maps."""

import math

import torch
import torch.nn as nn
import torch.nn.functional as F
from basicsr.utils.registry import ARCH_REGISTRY

from segsr.clip.loader import LoadedCLIP, encode_texts, load_clip
from segsr.nn.guidance import GatedFusion, GlobalPromptConditioner, MapUpsampler, PerStageFusion, PerStageMapUpsampler
from segsr.nn.info import GUIDED_SCALES, check_scale
from segsr.nn.published_compat import PublishedCompat
from segsr.utils.errors import SegSRError

TEXT_INIT_KEYS = ('template', 'global', 'local', 'model', 'pretrained', 'quick_gelu')
LAYOUTS = ('shared', 'per_stage')


@ARCH_REGISTRY.register()
class SLM(nn.Module):
    """Guidance maps ``M_i = temperature * cos(patch embedding, e_i)`` for each SR stage i.

    One global prompt and ``num_local`` local prompts per stage, all registered parameters. The
    global prompt is conditioned on the image's global embedding, every prompt token passes one
    multi-head self-attention (with a residual connection), and each local prompt is fused with
    the global one by a sigmoid gate. ``text_init`` optionally initialises the prompts from text
    through the CLIP text tower, which is used at build time only.

    ``fusion`` and ``upsampler`` are ``shared`` (one module for all stages) or ``per_stage`` (one per
    stage, as published). ``compat`` reproduces published behaviours (not a YAML option of SLM).
    """

    def __init__(self, embed_dim: int, num_stages: int, scale: int, patch_size: int, num_local: int = 1,
                 num_heads: int = 8, temperature: float = 100.0, text_init: dict | None = None,
                 fusion: str = 'shared', upsampler: str = 'shared', loaded_clip: LoadedCLIP | None = None,
                 compat: PublishedCompat | None = None):
        super().__init__()
        check_scale(scale, 'SLM', GUIDED_SCALES)
        if embed_dim % num_heads:
            raise SegSRError(f'slm.num_heads {num_heads} does not divide the CLIP embedding size {embed_dim}; '
                             'choose a divisor')
        for name, value in (('fusion', fusion), ('upsampler', upsampler)):
            if value not in LAYOUTS:
                raise SegSRError(f'slm.{name} is {value!r}; use one of {list(LAYOUTS)}')
        self.compat = compat or PublishedCompat()
        self.num_stages = num_stages
        self.num_local = num_local
        self.temperature = temperature
        std = embed_dim**-0.5
        self.global_prompt = nn.Parameter(torch.randn(embed_dim) * std)
        self.local_prompts = nn.Parameter(torch.randn(num_stages, num_local, embed_dim) * std)
        self.conditioner = GlobalPromptConditioner(embed_dim, relu=self.compat.meta_net_relu,
                                                   gamma_only=self.compat.film_gamma_only)
        self.prompt_attention = nn.MultiheadAttention(embed_dim, num_heads, batch_first=True)
        self.fusion = GatedFusion(embed_dim) if fusion == 'shared' else PerStageFusion(embed_dim, num_stages)
        factor = math.ceil(patch_size / scale)
        self.upsampler = (MapUpsampler(num_stages * num_local, factor) if upsampler == 'shared'
                          else PerStageMapUpsampler(num_local, factor, num_stages))
        if text_init:
            self.init_from_text(text_init, loaded_clip)

    @torch.no_grad()
    def init_from_text(self, text_init: dict, loaded_clip: LoadedCLIP | None = None) -> None:
        """Global prompt from the mean of ``global`` texts; local prompt k of every stage from ``local[k]``."""
        unknown = set(text_init) - set(TEXT_INIT_KEYS)
        if unknown:
            raise SegSRError(f'unknown slm.text_init keys {sorted(unknown)}; use {list(TEXT_INIT_KEYS)}')
        local = text_init.get('local') or []
        if local and len(local) != self.num_local:
            raise SegSRError(f'slm.text_init.local has {len(local)} entries but slm.num_local is {self.num_local}; '
                             'give one text (or list of texts) per local prompt')
        clip = loaded_clip or load_clip(text_init.get('model', 'ViT-B-16'), text_init.get('pretrained', 'openai'),
                                        text_init.get('quick_gelu', 'auto'), with_text=True)
        template = text_init.get('template', '{}')

        def embed(texts: str | list[str]) -> torch.Tensor:
            texts = [texts] if isinstance(texts, str) else list(texts)
            mean = encode_texts(clip, [template.format(t) for t in texts]).mean(dim=0)
            return F.normalize(mean, dim=-1).to(self.global_prompt)

        if text_init.get('global'):
            self.global_prompt.copy_(embed(text_init['global']))
        for k, texts in enumerate(local):
            self.local_prompts[:, k] = embed(texts)

    def forward(self, image_embedding: torch.Tensor, patch_embeddings: torch.Tensor,
                size: tuple[int, int]) -> list[torch.Tensor]:
        """(B, C) global and (B, C, gh, gw) dense embeddings -> per stage a (B, num_local, H, W) map."""
        batch = image_embedding.shape[0]
        global_prompt = self.conditioner(self.global_prompt.expand(batch, -1), image_embedding)
        local = self.local_prompts.flatten(0, 1).expand(batch, -1, -1)
        tokens = torch.cat([global_prompt.unsqueeze(1), local], dim=1)
        attended = self.prompt_attention(tokens, tokens, tokens, need_weights=False)[0]
        tokens = attended if self.compat.no_prompt_attention_residual else tokens + attended
        stage_prompts = self.fusion(tokens[:, 1:], tokens[:, :1])
        # The temperature (100) magnifies rounding: the similarity is computed in float32 even under autocast.
        with torch.autocast(patch_embeddings.device.type, enabled=False):
            stage_prompts = stage_prompts.float()
            if not self.compat.unnormalised_prompts:
                stage_prompts = F.normalize(stage_prompts, dim=-1)
            similarity = torch.einsum('bkc,bchw->bkhw', stage_prompts, F.normalize(patch_embeddings.float(), dim=1))
        maps = self.upsampler(self.temperature * similarity, size)
        return list(maps.split(self.num_local, dim=1))
