"""The published SeG-SR code's checkpoints (its key layout, its flat ``network_g``) as segsr SEGSR checkpoints.

Published layout: the HAT keys at top level; a peft-wrapped CLIP image tower under
``clip1.base_model.model.*`` (one LoRA adapter on each fused ``qkv``, the MLP's ``c_fc`` and
``c_proj``); the global prompt ``text_global``; the meta-net ``meta_global.*``; the FiLM layer
``meta_fuser.*``; the prompt attention ``text_att.*``; and five modules per stage ``i`` under
``spades.<5 i + j>``: gated fusion (j=0), a cross-attention mapper that is never called (1), the map
upsampler (2), the LayerNorm before the modulation (3), the modulation (4). The per-stage local
prompts are not in it (see :mod:`segsr.convert.official_prompts`).
"""

import re

import torch

from segsr.clip.loader import model_config
from segsr.nn.published_compat import PUBLISHED_CODE
from segsr.utils.errors import SegSRError

CLIP_PREFIX = 'clip1.base_model.model.'
MODULES_PER_STAGE = 5
PUBLISHED_LORA = {'rank': 32, 'alpha': 32, 'dropout': 0.05, 'targets': ['qkv', 'c_fc', 'c_proj']}
PUBLISHED_ONLY_OPTIONS = ('type', 'inference_mode')
# Unused by the published forward: the cross-attention mappers, SPADE's BatchNorm (its call is commented
# out) and HAT's final norm (skipped after the last modulation).
UNUSED = (re.compile(r'spades\.\d+\.param_free_norm\.'), re.compile(r'norm\.(weight|bias)$'))
FUSION_NAMES = {'fc_x': 'gate', 'fc_y': 'value', 'fc_out': 'out'}
MODULATION_NAMES = {'mlp_shared': 'shared', 'mlp_gamma': 'gamma', 'mlp_beta': 'beta'}
SLM_RENAMES = (
    ('meta_global.meta_net.linear1.', 'slm.conditioner.meta_net.0.'),
    ('meta_global.meta_net.linear2.', 'slm.conditioner.meta_net.2.'),
    ('meta_fuser.fc_out.', 'slm.conditioner.out.'),
    ('meta_fuser.fc.', 'slm.conditioner.film.'),
    ('text_att.to_out.0.', 'slm.prompt_attention.out_proj.'),
)


def check_published_network(published: dict) -> None:
    """A published SeG-SR network_g: the published code is SeG-SR on HAT over 3-band RGB only."""
    if published.get('type', 'SEGSR') != 'SEGSR':
        raise SegSRError(f"network_g.type is {published.get('type')!r}, not SEGSR; give the published SeG-SR YAML")
    if published.get('in_chans', 3) != 3:
        raise SegSRError(f"the published SeG-SR takes 3-band RGB; this network_g has in_chans {published['in_chans']}: "
                         'train a multi-band SEGSR with segsr instead (docs/segsr.md, "Multispectral")')


def network_options(published: dict, clip_model: str, num_local: int) -> dict:
    """segsr's ``network_g`` for a published one (flat HAT keys), with every published behaviour on."""
    check_published_network(published)
    backbone = {'type': 'HAT', **{k: v for k, v in published.items() if k not in PUBLISHED_ONLY_OPTIONS}}
    return {
        'type': 'SEGSR', 'upscale': backbone.get('upscale', 2), 'backbone': backbone,
        # The tower is the checkpoint's own (re-initialised by the published code), so it is stored, not rebuilt.
        'sfem': {'model': clip_model, 'pretrained': None, 'quick_gelu': True, 'lora': dict(PUBLISHED_LORA)},
        'slm': {'num_local': num_local, 'num_heads': 8, 'temperature': 100.0, 'fusion': 'per_stage',
                'upsampler': 'per_stage'},
        'lmm': {'hidden': 128, 'norm': 'layer'},
        'final_norm': False,
        'published_compat': dict(PUBLISHED_CODE),
    }


def check_clip_model(state: dict, clip_model: str) -> None:
    """The published tower's architecture, read from its tensors, must be ``clip_model``'s."""
    vision = model_config(clip_model)['vision_cfg']
    conv = state.get(CLIP_PREFIX + 'conv1.weight')
    if conv is None:
        raise SegSRError(f'no {CLIP_PREFIX}conv1.weight in the checkpoint: it is not a published SeG-SR checkpoint')
    layers = len({k.split('.')[5] for k in state if k.startswith(CLIP_PREFIX + 'transformer.resblocks.')})
    found = (conv.shape[0], layers, conv.shape[-1])
    expected = (vision['width'], vision['layers'], vision['patch_size'])
    if found != expected:
        raise SegSRError(f'the checkpoint\'s CLIP tower has width {found[0]}, {found[1]} layers, patch {found[2]}; '
                         f'{clip_model} has {expected[0]}, {expected[1]}, {expected[2]}: pass --clip-model with '
                         'that architecture')


def clip_key(key: str) -> str:
    """A peft-wrapped OpenAI-CLIP tower key -> segsr's LoRA'd open_clip tower key."""
    key = key[len(CLIP_PREFIX):].replace('.base_layer.', '.')
    key = re.sub(r'\.attn\.qkv\.lora_([AB])\.default\.weight$', r'.attn.lora.qkv.lora_\1', key)
    key = re.sub(r'\.mlp\.(c_fc|c_proj)\.lora_([AB])\.default\.weight$', r'.mlp.\1.lora.lora_\2', key)
    key = re.sub(r'\.attn\.qkv\.(weight|bias)$', r'.attn.in_proj_\1', key)
    return 'sfem.tower.' + key.replace('.attn.proj.', '.attn.out_proj.')


def stage_key(index: int, rest: str) -> str:
    stage, part = divmod(index, MODULES_PER_STAGE)
    name, _, tail = rest.partition('.')
    if part == 0:
        return f'slm.fusion.stages.{stage}.{FUSION_NAMES[name]}.{tail}'
    if part == 2:
        return f'slm.upsampler.stages.{stage}.steps.{rest}'
    if part == 3:
        return f'lmm.{stage}.norm.{rest}'
    if part == 4:
        return f'lmm.{stage}.{MODULATION_NAMES[name]}.{tail}'
    raise SegSRError(f'spades.{index}.{rest} is not a tensor of the published layout; is this a SeG-SR checkpoint?')


def convert_state_dict(published: dict, local_prompts: torch.Tensor) -> tuple[dict, list[str]]:
    """segsr's SEGSR state dict from a published one and the per-stage prompts (stages, K, C).

    Returns the converted tensors and the published keys left out because its forward never uses them.
    """
    published = {k.removeprefix('module.'): v for k, v in published.items()}
    converted, unused, attention = {}, [], {}
    for key, value in published.items():
        spade = re.fullmatch(r'spades\.(\d+)\.(.+)', key)
        if any(pattern.match(key) for pattern in UNUSED) or (spade and int(spade[1]) % MODULES_PER_STAGE == 1):
            unused.append(key)
        elif key.startswith(CLIP_PREFIX):
            converted[clip_key(key)] = value
        elif spade:
            converted[stage_key(int(spade[1]), spade[2])] = value
        elif key == 'text_global':
            converted['slm.global_prompt'] = value[:, 0]
        elif re.fullmatch(r'text_att\.to_[qkv]\.weight', key):
            attention[key[len('text_att.to_')]] = value
        else:
            renamed = next((key.replace(old, new, 1) for old, new in SLM_RENAMES if key.startswith(old)), None)
            converted[renamed or 'backbone.' + key] = value
    if sorted(attention) != ['k', 'q', 'v']:
        raise SegSRError(f'text_att.to_q/to_k/to_v weights missing (found {sorted(attention)}); '
                         'give a complete published SeG-SR checkpoint')
    # The published prompt attention has no q/k/v biases: segsr's packed projection gets zero ones.
    packed = torch.cat([attention['q'], attention['k'], attention['v']])
    converted['slm.prompt_attention.in_proj_weight'] = packed
    converted['slm.prompt_attention.in_proj_bias'] = packed.new_zeros(packed.shape[0])
    converted['slm.local_prompts'] = local_prompts.to(packed.dtype)
    return converted, unused
