"""SLM: learned prompts in CLIP's joint space turned into per-stage guidance maps."""

import math

import torch
import torch.nn as nn
import torch.nn.functional as F
from basicsr.utils.registry import ARCH_REGISTRY

from segsr.archs.clip_loader import LoadedCLIP, encode_texts, load_clip
from segsr.utils.errors import SegSRError

SUPPORTED_SCALES = (2, 3, 4, 8)
TEXT_INIT_KEYS = ('template', 'global', 'local', 'model', 'pretrained', 'quick_gelu')


def check_scale(scale: int) -> None:
    if scale not in SUPPORTED_SCALES:
        raise SegSRError(f'upscale {scale} is not supported by semantic guidance; use one of {list(SUPPORTED_SCALES)}')


class GlobalPromptConditioner(nn.Module):
    """Conditions the global prompt on the image: meta-net, FiLM ``p * (1 + gamma) + beta``, then a linear.

    The meta-net bottleneck (C/16 units) uses GELU: with few units a ReLU can go dead for a whole batch.
    """

    def __init__(self, dim: int):
        super().__init__()
        hidden = max(1, dim // 16)
        self.meta_net = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))
        self.film = nn.Linear(dim, 2 * dim)
        self.out = nn.Linear(dim, dim)

    def forward(self, prompt: torch.Tensor, image_embedding: torch.Tensor) -> torch.Tensor:
        gamma, beta = self.film(self.meta_net(image_embedding)).chunk(2, dim=-1)
        return self.out(prompt * (1 + gamma) + beta)


class GatedFusion(nn.Module):
    """e = W_out(sigmoid(W_x p_local) * W_y p_global)."""

    def __init__(self, dim: int):
        super().__init__()
        self.gate = nn.Linear(dim, dim)
        self.value = nn.Linear(dim, dim)
        self.out = nn.Linear(dim, dim)

    def forward(self, local: torch.Tensor, global_: torch.Tensor) -> torch.Tensor:
        return self.out(torch.sigmoid(self.gate(local)) * self.value(global_))


class MapUpsampler(nn.Module):
    """Learnable integer pixel-shuffle upsampling, then bilinear resizing to the exact feature size.

    The integer factor ``ceil(patch / scale)`` brings the patch grid to at least the LR size for
    every scale (also where ``patch / scale`` is not a power of two, e.g. x3); the conv starts as
    nearest-neighbour replication so the maps are meaningful from the first step.
    """

    def __init__(self, channels: int, factor: int):
        super().__init__()
        self.factor = factor
        if factor > 1:
            self.expand = nn.Conv2d(channels, channels * factor**2, 3, padding=1)
            self.shuffle = nn.PixelShuffle(factor)
            with torch.no_grad():
                self.expand.weight.zero_()
                self.expand.bias.zero_()
                for c in range(channels):
                    self.expand.weight[c * factor**2:(c + 1) * factor**2, c, 1, 1] = 1

    def forward(self, maps: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        if self.factor > 1:
            maps = self.shuffle(self.expand(maps))
        if tuple(maps.shape[-2:]) != tuple(size):
            maps = F.interpolate(maps, size=size, mode='bilinear', align_corners=False)
        return maps


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
