"""Behaviours of the published SeG-SR code that change its outputs, as options that reproduce them.

They exist so that checkpoints of the published code run here with the outputs they give there
(``scripts/convert_official_segsr.py`` turns them all on). Every one is off by default; several are
mistakes listed in docs/segsr.md and none is recommended for new training.
"""

from dataclasses import dataclass, fields

from segsr.utils.errors import SegSRError


@dataclass(frozen=True)
class PublishedCompat:
    """``network_g.published_compat`` of SEGSR; see docs/segsr.md for what each key reproduces."""

    clip_input: bool = False  # CLIP sees bilinear-upsampled (LR - SR mean) * img_range: no CLIP mean/std, no snap
    clip_pos_embed_1d: bool = False  # positions resized as one 1-D sequence, class position included
    clip_num_heads: int | None = None  # attention heads of the CLIP tower instead of the weights' own
    global_from_first_patch: bool = False  # "global" embedding: first patch token through ln_post twice
    unnormalised_prompts: bool = False  # fused prompts enter the similarity without L2 normalisation
    no_prompt_attention_residual: bool = False  # prompt self-attention output replaces its input
    meta_net_relu: bool = False  # ReLU instead of GELU in the meta-net bottleneck
    film_gamma_only: bool = False  # FiLM as gamma * p + beta instead of p * (1 + gamma) + beta

    @classmethod
    def from_options(cls, options: dict | None) -> 'PublishedCompat':
        options = dict(options or {})
        names = [f.name for f in fields(cls)]
        unknown = sorted(set(options) - set(names))
        if unknown:
            raise SegSRError(f'unknown network_g.published_compat keys {unknown}; use {names}')
        heads = options.get('clip_num_heads')
        if heads is not None and (isinstance(heads, bool) or not isinstance(heads, int) or heads < 1):
            raise SegSRError(f'network_g.published_compat.clip_num_heads is {heads!r}; give a positive integer or ~')
        flags = [name for name in names if name != 'clip_num_heads' and not isinstance(options.get(name, False), bool)]
        if flags:
            raise SegSRError(f'network_g.published_compat.{flags[0]} is {options[flags[0]]!r}; use true or false')
        return cls(**options)


# Everything the published code does, at its ViT-B/16 head count (16 heads where the weights have 12).
PUBLISHED_CODE = {f.name: True for f in fields(PublishedCompat) if f.name != 'clip_num_heads'} | {'clip_num_heads': 16}
