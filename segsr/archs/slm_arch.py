"""SLM: learned prompts in CLIP's joint space turned into per-stage guidance maps."""

import math

import torch
import torch.nn as nn
import torch.nn.functional as F
from basicsr.utils.registry import ARCH_REGISTRY

from segsr.clip.loader import LoadedCLIP, encode_texts, load_clip
from segsr.nn.guidance import GatedFusion, GlobalPromptConditioner, MapUpsampler
from segsr.utils.errors import SegSRError

SUPPORTED_SCALES = (2, 3, 4, 8)
TEXT_INIT_KEYS = ('template', 'global', 'local', 'model', 'pretrained', 'quick_gelu')


def check_scale(scale: int) -> None:
    if scale not in SUPPORTED_SCALES:
        raise SegSRError(f'upscale {scale} is not supported by semantic guidance; use one of {list(SUPPORTED_SCALES)}')


@ARCH_REGISTRY.register()
class SLM(nn.Module):
    """Guidance maps ``M_i = temperature * cos(patch embedding, e_i)`` for each SR stage i.

    One global prompt and ``num_local`` local prompts per stage, all registered parameters. The
    global prompt is conditioned on the image's global embedding, every prompt token passes one
    multi-head self-attention (with a residual connection), and each local prompt is fused with
    the global one by a sigmoid gate. ``text_init`` optionally initialises the prompts from text
    through the CLIP text tower, which is used at build time only.
    """

    def __init__(self, embed_dim: int, num_stages: int, scale: int, patch_size: int, num_local: int = 1,
                 num_heads: int = 8, temperature: float = 100.0, text_init: dict | None = None,
                 loaded_clip: LoadedCLIP | None = None):
        super().__init__()
        check_scale(scale)
        if embed_dim % num_heads:
            raise SegSRError(f'slm.num_heads {num_heads} does not divide the CLIP embedding size {embed_dim}; '
                             'choose a divisor')
        self.num_stages = num_stages
        self.num_local = num_local
        self.temperature = temperature
        std = embed_dim**-0.5
        self.global_prompt = nn.Parameter(torch.randn(embed_dim) * std)
        self.local_prompts = nn.Parameter(torch.randn(num_stages, num_local, embed_dim) * std)
        self.conditioner = GlobalPromptConditioner(embed_dim)
        self.prompt_attention = nn.MultiheadAttention(embed_dim, num_heads, batch_first=True)
        self.fusion = GatedFusion(embed_dim)
        self.upsampler = MapUpsampler(num_stages * num_local, math.ceil(patch_size / scale))
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
        tokens = tokens + self.prompt_attention(tokens, tokens, tokens, need_weights=False)[0]
        stage_prompts = self.fusion(tokens[:, 1:], tokens[:, :1])
        # The temperature (100) magnifies rounding: the similarity is computed in float32 even under autocast.
        with torch.autocast(patch_embeddings.device.type, enabled=False):
            cosine = torch.einsum('bkc,bchw->bkhw', F.normalize(stage_prompts.float(), dim=-1),
                                  F.normalize(patch_embeddings.float(), dim=1))
        maps = self.upsampler(self.temperature * cosine, size)
        return list(maps.split(self.num_local, dim=1))
