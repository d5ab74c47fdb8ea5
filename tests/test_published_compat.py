"""Options that reproduce the published SeG-SR code: each changes the output, and only where it should."""

import copy

import pytest
import torch

import segsr  # noqa: F401  (registers the archs)
from segsr.archs.segsr_arch import SEGSR
from segsr.clip.lora import LoRASelfAttention
from segsr.clip.tiny import TINY_CLIP_MODEL
from segsr.nn.guidance import GlobalPromptConditioner
from segsr.nn.padding import pad_to_multiple
from segsr.nn.published_compat import PUBLISHED_CODE
from segsr.utils.errors import SegSRError

HAT_2_STAGES = {
    'type': 'HAT', 'img_size': 16, 'embed_dim': 12, 'depths': [1, 1], 'num_heads': [2, 2], 'window_size': 4,
    'compress_ratio': 3, 'squeeze_factor': 4, 'mlp_ratio': 1.0,
}
LORA = {'rank': 4, 'alpha': 4, 'dropout': 0.0}
FLAGS = [name for name in PUBLISHED_CODE if name != 'clip_num_heads']
SFEM_FLAGS = ('clip_input', 'clip_pos_embed_1d', 'global_from_first_patch')


def build(upscale=4, lora=LORA, sfem=None, slm=None, **options) -> SEGSR:
    torch.manual_seed(0)
    sfem = {'model': TINY_CLIP_MODEL, 'pretrained': None, 'lora': lora, **(sfem or {})}
    net = SEGSR(backbone=dict(HAT_2_STAGES), upscale=upscale, sfem=sfem, slm={'num_heads': 4, **(slm or {})},
                lmm={'hidden': 8}, **copy.deepcopy(options))
    with torch.no_grad():  # random weights everywhere, adapters and norms included
        for param in net.parameters():
            param.add_(torch.randn_like(param) * 0.05)
    return net.eval()


def outputs(net: SEGSR, lr: torch.Tensor):
    with torch.no_grad():
        global_, dense = net.sfem(pad_to_multiple(lr, net.network_info.pad_multiple))
        out, maps = net(lr, return_maps=True)
    return global_, dense, out, maps


LR = torch.rand(1, 3, 8, 12)


def test_flags_off_are_the_default_network_and_on_keep_its_keys():
    default = build()
    off = build(published_compat={name: False for name in FLAGS} | {'clip_num_heads': None})
    on = build(published_compat=PUBLISHED_CODE)
    assert default.state_dict().keys() == off.state_dict().keys() == on.state_dict().keys()
    assert not any('stages' in key or 'lora.qkv' in key for key in default.state_dict())
    on.load_state_dict(default.state_dict(), strict=True)
    with torch.no_grad():
        assert torch.equal(default(LR), off(LR))
        assert not torch.allclose(default(LR), on(LR), atol=1e-3)


@pytest.mark.parametrize('flag', FLAGS)
def test_each_flag_changes_the_output_where_it_acts(flag):
    default = build()
    compat = build(published_compat={flag: True})
    compat.load_state_dict(default.state_dict(), strict=True)
    lr = torch.rand(1, 3, 10, 14)  # CLIP grid 5x7 differs from the 4x4 position table
    g0, d0, out0, maps0 = outputs(default, lr)
    g1, d1, out1, maps1 = outputs(compat, lr)
    assert not torch.allclose(out0, out1, atol=1e-5)
    if flag not in SFEM_FLAGS:  # guidance-path flags leave the CLIP embeddings alone
        assert torch.equal(g0, g1) and torch.equal(d0, d1)
    if flag == 'global_from_first_patch':  # only the global embedding changes
        assert torch.equal(d0, d1) and not torch.allclose(g0, g1)


def test_one_dimensional_positions_equal_the_two_dimensional_at_the_native_grid():
    default = build()
    compat = build(published_compat={'clip_pos_embed_1d': True})
    compat.load_state_dict(default.state_dict(), strict=True)
    lr = torch.rand(1, 3, 8, 8)  # x4 = 32 px = the tiny CLIP's 4x4 grid: no resizing at all
    with torch.no_grad():
        assert torch.allclose(default.sfem(lr)[1], compat.sfem(lr)[1], atol=1e-6)


def test_published_clip_input_is_the_sr_mean_without_clip_normalisation_or_snap():
    compat = build(published_compat={'clip_input': True})
    mean = compat.backbone.mean.flatten().tolist()
    default = build(sfem={'mean': mean, 'std': [1.0, 1.0, 1.0]})
    default.load_state_dict(compat.state_dict(), strict=True)
    lr = torch.rand(1, 3, 8, 12)  # x4 is a multiple of the patch: the snap changes nothing
    with torch.no_grad():
        assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(compat.sfem(lr), default.sfem(lr), strict=True))
    assert compat.sfem.clip_input_size(7, 10) == (28, 40) and default.sfem.clip_input_size(7, 10) == (32, 40)


def test_clip_head_count_equal_to_the_weights_changes_nothing():
    default = build()
    own = build(published_compat={'clip_num_heads': default.sfem.num_heads})
    other = build(published_compat={'clip_num_heads': 4})
    for net in (own, other):
        net.load_state_dict(default.state_dict(), strict=True)
    assert {m.num_heads for m in other.modules() if isinstance(m, LoRASelfAttention)} == {4}
    with torch.no_grad():
        assert torch.equal(default(LR), own(LR)) and not torch.allclose(default(LR), other(LR), atol=1e-5)


def test_film_gamma_only_drops_exactly_the_identity_term():
    torch.manual_seed(0)
    default, compat = GlobalPromptConditioner(32), GlobalPromptConditioner(32, gamma_only=True)
    compat.load_state_dict(default.state_dict())
    prompt, image = torch.randn(2, 32), torch.randn(2, 32)
    with torch.no_grad():
        expected = default(prompt, image) - prompt @ default.out.weight.t()
        assert torch.allclose(compat(prompt, image), expected, atol=1e-5)


def test_fused_qkv_adapter_equals_q_k_v_adapters_sharing_its_down_projection():
    fused = build(lora={**LORA, 'targets': ['qkv', 'c_fc', 'c_proj']})
    split = build()
    state = split.state_dict()
    for key, value in fused.state_dict().items():
        if '.attn.lora.qkv.' not in key:
            state[key] = value
            continue
        prefix = key.split('.attn.lora.qkv.')[0] + '.attn.lora.'
        for name, part in zip('qkv', value.chunk(3) if key.endswith('lora_B') else (value,) * 3, strict=True):
            state[f'{prefix}{name}.{key.rsplit(".", 1)[1]}'] = part
    split.load_state_dict(state, strict=True)
    with torch.no_grad():
        reference = fused(LR)
        assert torch.allclose(split(LR), reference, atol=1e-5)
        fused.merge_lora()
        assert torch.allclose(fused(LR), reference, atol=1e-5)
    with pytest.raises(SegSRError, match='adapt q/k/v twice'):
        build(lora={**LORA, 'targets': ['qkv', 'q']})


def test_per_stage_fusion_with_equal_weights_equals_the_shared_one():
    shared = build()
    per_stage = build(slm={'fusion': 'per_stage'})
    state = {k: v for k, v in shared.state_dict().items() if not k.startswith('slm.fusion.')}
    for stage in range(2):
        state |= {f'slm.fusion.stages.{stage}.{k[len("slm.fusion."):]}': v
                  for k, v in shared.state_dict().items() if k.startswith('slm.fusion.')}
    per_stage.load_state_dict(state, strict=True)
    with torch.no_grad():
        assert (per_stage(LR) - shared(LR)).abs().max() < 1e-5


@pytest.mark.parametrize('scale', [2, 3, 4, 8])
def test_per_stage_map_upsampler_starts_as_replication_at_every_scale(scale):
    net = build(upscale=scale, slm={'upsampler': 'per_stage'})
    torch.manual_seed(1)
    maps = torch.rand(1, 2, 4, 6)
    factor = -(-8 // scale)
    with torch.no_grad():
        up = type(net.slm.upsampler)(1, factor, 2)(maps, (4 * factor, 6 * factor))
        out, stage_maps = net(torch.rand(1, 3, 7, 10), return_maps=True)
    assert torch.allclose(up, maps.repeat_interleave(factor, -1).repeat_interleave(factor, -2), atol=1e-6)
    assert out.shape == (1, 3, 7 * scale, 10 * scale) and all(m.shape == (1, 1, 8, 12) for m in stage_maps)


def test_final_norm_off_drops_the_backbone_norm_and_needs_one():
    net = build(final_norm=False)
    assert not any(key.startswith('backbone.norm.') for key in net.state_dict())
    with pytest.raises(SegSRError, match='final_norm: false needs a backbone with a final LayerNorm'):
        SEGSR(backbone={'type': 'StagedEDSR', 'num_feat': 8, 'num_block': 2, 'num_stages': 2, 'upscale': 4},
              sfem={'model': TINY_CLIP_MODEL, 'pretrained': None, 'lora': LORA}, slm={'num_heads': 4},
              final_norm=False)


@pytest.mark.parametrize(('options', 'message'), [
    ({'clip_heads': 16}, 'unknown network_g.published_compat keys'),
    ({'clip_input': 'yes'}, 'clip_input is .yes.; use true or false'),
    ({'clip_num_heads': 0}, 'give a positive integer'),
])
def test_bad_compat_options_are_one_line(options, message):
    with pytest.raises(SegSRError, match=message):
        build(published_compat=options)
