"""HAT backbone: published checkpoint naming, attention paths, any-size inputs, caching, hooks."""

import copy

import pytest
import torch
from conftest import TINY_HAT

import segsr  # noqa: F401  (registers archs)
from segsr.archs.hat_arch import HAT
from segsr.nn import hat_blocks
from segsr.nn.hat_blocks import AttentionContext, OverlappingCrossAttentionBlock, WindowSelfAttention
from segsr.nn.window_attention import (
    relative_position_index_oca,
    relative_position_index_sa,
    shifted_window_mask,
    window_merge,
    window_partition,
)
from segsr.utils.errors import SegSRError

TINY = {**TINY_HAT, 'upscale': 2}
RPI = ('relative_position_index_SA', 'relative_position_index_OCA')


def tiny_hat(seed: int = 0, **overrides) -> HAT:
    torch.manual_seed(seed)
    return HAT(**{**TINY, **overrides})


def randomise(model: torch.nn.Module, seed: int = 1) -> torch.nn.Module:
    """Move every parameter off its init constant so each one influences the output."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for param in model.parameters():
            param.copy_(torch.randn(param.shape, generator=gen) * 0.1)
    return model


def published_keys(depths, upscale, patch_norm=True, ape=False, resi_connection='1conv') -> set[str]:
    """State-dict keys of the published HAT, spelled out from its module naming."""

    def wb(*names):
        return {f'{n}.{p}' for n in names for p in ('weight', 'bias')}

    keys = {*RPI, *wb('conv_first', 'norm', 'conv_before_upsample.0', 'conv_last')}
    keys |= wb('patch_embed.norm') if patch_norm else set()
    keys |= {'absolute_pos_embed'} if ape else set()
    keys |= wb('conv_after_body') if resi_connection == '1conv' else set()
    upsample_convs = {2: 1, 3: 1, 4: 2, 8: 3}[upscale]
    keys |= wb(*(f'upsample.{2 * i}' for i in range(upsample_convs)))
    for i, depth in enumerate(depths):
        group = f'layers.{i}.residual_group'
        for j in range(depth):
            block = f'{group}.blocks.{j}'
            keys.add(f'{block}.attn.relative_position_bias_table')
            keys |= wb(
                *(
                    f'{block}.{n}'
                    for n in (
                        'norm1',
                        'attn.qkv',
                        'attn.proj',
                        'conv_block.cab.0',
                        'conv_block.cab.2',
                        'conv_block.cab.3.attention.1',
                        'conv_block.cab.3.attention.3',
                        'norm2',
                        'mlp.fc1',
                        'mlp.fc2',
                    )
                )
            )
        ocab = f'{group}.overlap_attn'
        keys.add(f'{ocab}.relative_position_bias_table')
        keys |= wb(*(f'{ocab}.{n}' for n in ('norm1', 'qkv', 'proj', 'norm2', 'mlp.fc1', 'mlp.fc2')))
        keys |= wb(f'layers.{i}.conv') if resi_connection == '1conv' else set()
    return keys


# --- checkpoint naming ---------------------------------------------------------------------------


@pytest.mark.parametrize('upscale', [2, 3, 4, 8])
def test_state_dict_keys_follow_published_naming(upscale):
    model = tiny_hat(upscale=upscale)
    assert set(model.state_dict()) == published_keys(TINY['depths'], upscale)


def test_state_dict_keys_for_optional_parts():
    model = tiny_hat(ape=True, patch_norm=False, resi_connection='identity', in_chans=1)
    assert set(model.state_dict()) == published_keys(
        TINY['depths'], 2, patch_norm=False, ape=True, resi_connection='identity'
    )


def test_parameter_shapes_follow_published_layout():
    sd = tiny_hat(upscale=3).state_dict()
    ws, ows, dim = 4, 6, 12
    assert sd['layers.1.residual_group.blocks.0.attn.relative_position_bias_table'].shape == ((2 * ws - 1) ** 2, 3)
    assert sd['layers.0.residual_group.overlap_attn.relative_position_bias_table'].shape == ((ws + ows - 1) ** 2, 2)
    assert sd['relative_position_index_SA'].shape == (ws * ws, ws * ws)
    assert sd['relative_position_index_OCA'].shape == (ws * ws, ows * ows)
    assert sd['layers.0.residual_group.blocks.1.conv_block.cab.0.weight'].shape == (dim // 3, dim, 3, 3)
    assert sd['layers.0.residual_group.blocks.1.conv_block.cab.3.attention.1.weight'].shape == (dim // 4, dim, 1, 1)
    assert sd['layers.0.residual_group.blocks.0.mlp.fc1.weight'].shape == (2 * dim, dim)
    assert sd['layers.0.residual_group.overlap_attn.qkv.weight'].shape == (3 * dim, dim)
    assert sd['upsample.0.weight'].shape == (9 * 64, 64, 3, 3)
    assert sd['conv_before_upsample.0.weight'].shape == (64, dim, 3, 3)


def test_relative_position_indices_match_their_definition():
    ws, ows = 4, 6
    sa, oca = relative_position_index_sa(ws), relative_position_index_oca(ws, ows)
    coords = [(r, c) for r in range(ws) for c in range(ws)]
    ext = [(r, c) for r in range(ows) for c in range(ows)]
    for p, (r1, c1) in enumerate(coords):
        for q, (r2, c2) in enumerate(coords):
            assert sa[p, q] == (r1 - r2 + ws - 1) * (2 * ws - 1) + (c1 - c2 + ws - 1)
        for q, (r2, c2) in enumerate(ext):
            assert oca[p, q] == (r2 - r1 + ws - ows + 1) * (ws + ows - 1) + (c2 - c1 + ws - ows + 1)


def test_published_state_dict_loads_strictly_with_and_without_index_buffers():
    source = randomise(tiny_hat(seed=0)).eval()
    state = copy.deepcopy(source.state_dict())
    x = torch.rand(1, 3, 8, 12)
    with torch.no_grad():
        expected = source(x)

    full = tiny_hat(seed=5).eval()
    full.load_state_dict(state, strict=True)
    without_rpi = tiny_hat(seed=6).eval()
    without_rpi.load_state_dict({k: v for k, v in state.items() if k not in RPI}, strict=True)
    with torch.no_grad():
        assert torch.equal(full(x), expected)
        assert torch.equal(without_rpi(x), expected)
    for name in RPI:
        assert torch.equal(getattr(without_rpi, name), state[name])


def test_mismatched_state_dict_still_fails_strict_loading():
    state = tiny_hat().state_dict()
    state.pop('conv_last.weight')
    with pytest.raises(RuntimeError, match='conv_last.weight'):
        tiny_hat().load_state_dict(state, strict=True)


# --- SDPA versus explicit attention ---------------------------------------------------------------


def naive_window_attention(module: WindowSelfAttention, windows, rpi, shift_mask):
    """softmax(q k^T * scale + bias + mask) v one window at a time, straight from the definition."""
    b, nw, n, c = windows.shape
    heads, d = module.num_heads, c // module.num_heads
    bias = module.relative_position_bias_table[rpi.flatten()].view(n, n, heads).permute(2, 0, 1)
    out = torch.empty(b, nw, n, c)
    for bi in range(b):
        for wi in range(nw):
            q, k, v = module.qkv(windows[bi, wi]).view(n, 3, heads, d).permute(1, 2, 0, 3)
            logits = q @ k.transpose(-1, -2) * module.scale + bias + shift_mask[wi]
            out[bi, wi] = (logits.softmax(-1) @ v).transpose(0, 1).reshape(n, c)
    return module.proj(out)


def test_window_attention_sdpa_equals_explicit_and_definition():
    torch.manual_seed(0)
    ws, h, w = 4, 8, 12
    module = randomise(WindowSelfAttention(dim=12, window_size=ws, num_heads=3)).eval()
    windows = window_partition(torch.randn(2, h, w, 12), ws)
    rpi = relative_position_index_sa(ws)
    shift_mask = shifted_window_mask(h, w, ws, ws // 2, torch.device('cpu'), torch.float32)
    with torch.no_grad():
        reference = naive_window_attention(module, windows, rpi, shift_mask)
        results = {}
        for impl in ('sdpa', 'explicit'):
            module.attn_impl = impl
            results[impl] = (module(windows, rpi, shift_mask), module(windows, rpi))
    torch.testing.assert_close(results['sdpa'][0], results['explicit'][0], atol=1e-5, rtol=0)
    torch.testing.assert_close(results['sdpa'][1], results['explicit'][1], atol=1e-5, rtol=0)
    torch.testing.assert_close(results['sdpa'][0], reference, atol=1e-5, rtol=0)
    assert not torch.allclose(results['sdpa'][0], results['sdpa'][1], atol=1e-3)


def test_overlapping_cross_attention_sdpa_equals_explicit():
    torch.manual_seed(0)
    block = randomise(OverlappingCrossAttentionBlock(12, 4, 0.5, 3, True, None, 2, torch.nn.LayerNorm, 'sdpa'))
    ctx = AttentionContext(relative_position_index_sa(4), relative_position_index_oca(4, 6), None)
    x = torch.randn(2, 8, 12, 12)
    with torch.no_grad():
        sdpa = block(x, ctx)
        block.attn_impl = 'explicit'
        explicit = block(x, ctx)
    torch.testing.assert_close(sdpa, explicit, atol=1e-5, rtol=0)


def test_whole_model_sdpa_equals_explicit_in_outputs_and_gradients():
    model = randomise(tiny_hat())
    x = torch.rand(2, 3, 8, 12)
    results = {}
    for impl in ('sdpa', 'explicit'):
        model.set_attn_impl(impl)
        model.zero_grad()
        torch.manual_seed(0)  # the same stochastic-depth draws on both paths
        out = model(x)
        out.square().mean().backward()
        table = model.layers[0].residual_group.blocks[1].attn.relative_position_bias_table
        results[impl] = (out.detach(), table.grad.clone())
    torch.testing.assert_close(results['sdpa'][0], results['explicit'][0], atol=1e-5, rtol=0)
    torch.testing.assert_close(results['sdpa'][1], results['explicit'][1], atol=1e-5, rtol=1e-4)
    assert results['sdpa'][1].abs().sum() > 0


# --- shapes, padding and options ------------------------------------------------------------------


@pytest.mark.parametrize('upscale', [2, 3, 4, 8])
@pytest.mark.parametrize('size', [(7, 13), (3, 40), (1, 1), (8, 8)])
def test_output_shape_for_any_input_size(upscale, size):
    model = tiny_hat(upscale=upscale).eval()
    with torch.no_grad():
        out = model(torch.rand(2, 3, *size))
    assert out.shape == (2, 3, size[0] * upscale, size[1] * upscale)
    assert torch.isfinite(out).all()


def test_window_partition_round_trip():
    x = torch.randn(2, 8, 12, 5)
    windows = window_partition(x, 4)
    assert windows.shape == (2, 6, 16, 5)
    assert torch.equal(windows[0, 1], x[0, :4, 4:8].reshape(16, 5))
    assert torch.equal(window_merge(windows, 4, 8, 12), x)


@pytest.mark.parametrize(
    'options, message',
    [
        (dict(upscale=5), 'upscale 5'),
        (dict(upsampler=''), 'upsampler'),
        (dict(resi_connection='3conv'), 'resi_connection'),
        (dict(attn_impl='flash'), 'attn_impl'),
        (dict(num_heads=(5, 3)), 'divisible'),
        (dict(img_size=2), 'window_size'),
    ],
)
def test_bad_options_raise_one_line_errors(options, message):
    with pytest.raises(SegSRError, match=message) as info:
        tiny_hat(**options)
    assert '\n' not in str(info.value)


def test_registered_and_buildable_from_options():
    from basicsr.archs import build_network

    model = build_network({'type': 'HAT', **TINY})
    assert isinstance(model, HAT)
    info = model.network_info
    assert (info.num_stages, info.num_features, info.pad_multiple, info.scale) == (2, 12, 4, 2)


# --- mask cache -----------------------------------------------------------------------------------


def test_shift_masks_are_cached_per_size_on_the_input_device():
    model = tiny_hat().eval()
    with torch.no_grad():
        model(torch.rand(1, 3, 8, 8))
        assert len(model.shift_masks) == 1
        ((key, first),) = model.shift_masks.items()
        model(torch.rand(2, 3, 7, 5))  # pads to the same 8x8
        assert len(model.shift_masks) == 1
        assert next(iter(model.shift_masks.items()))[1] is first
        model(torch.rand(1, 3, 12, 8))
        assert len(model.shift_masks) == 2
    assert key[:2] == (8, 8)
    for (_, _, device, dtype), mask in model.shift_masks.items():
        assert mask.device == device == torch.device('cpu')
        assert mask.dtype == dtype == torch.float32


def test_shift_mask_cache_drops_least_recently_used_sizes():
    model = tiny_hat().eval()
    model.shift_masks.max_entries = 2
    with torch.no_grad():
        for h in (4, 8, 4, 12):
            model(torch.rand(1, 3, h, 4))
    assert sorted(key[0] for key, _ in model.shift_masks.items()) == [4, 12]


def test_cached_masks_stay_correct_when_bias_tables_train():
    model = randomise(tiny_hat())
    x = torch.rand(2, 3, 8, 8)
    optimizer = torch.optim.SGD(model.parameters(), lr=1.0)
    model(x).mean().backward()
    optimizer.step()
    fresh = tiny_hat(seed=3)
    fresh.load_state_dict(model.state_dict())
    model.eval()
    fresh.eval()
    with torch.no_grad():
        assert torch.equal(model(x), fresh(x))


# --- stage hook and gradient checkpointing --------------------------------------------------------


def test_stage_hook_sees_every_stage_and_identity_hook_changes_nothing():
    model = randomise(tiny_hat()).eval()
    x = torch.rand(2, 3, 7, 10)
    calls = []

    def record(stage, feat):
        calls.append((stage, tuple(feat.shape)))
        return feat

    with torch.no_grad():
        plain = model(x)
        hooked = model(x, stage_hook=record)
        zeroed = model(x, stage_hook=lambda stage, feat: feat * 0 if stage == 0 else feat)
    assert calls == [(i, (2, 12, 8, 12)) for i in range(model.network_info.num_stages)]
    assert torch.equal(plain, hooked)
    assert not torch.allclose(plain, zeroed)


def test_stage_hook_with_wrong_shape_raises():
    model = tiny_hat().eval()
    with torch.no_grad(), pytest.raises(SegSRError, match='stage_hook'):
        model(torch.rand(1, 3, 8, 8), stage_hook=lambda stage, feat: feat[:, :1])


def test_gradient_checkpointing_recomputes_blocks_and_keeps_gradients(monkeypatch):
    plain = randomise(tiny_hat(drop_path_rate=0.0))
    checkpointed = tiny_hat(use_checkpoint=True, drop_path_rate=0.0)
    checkpointed.load_state_dict(plain.state_dict())
    calls = []
    original = hat_blocks.checkpoint.checkpoint

    def counting_checkpoint(*args, **kwargs):
        calls.append(kwargs.get('use_reentrant'))
        return original(*args, **kwargs)

    monkeypatch.setattr(hat_blocks.checkpoint, 'checkpoint', counting_checkpoint)
    x = torch.rand(2, 3, 8, 8)
    for model in (plain, checkpointed):
        model(x).square().mean().backward()
    blocks_per_model = sum(TINY['depths']) + len(TINY['depths'])
    assert calls == [False] * blocks_per_model
    for (name, p), q in zip(plain.named_parameters(), checkpointed.parameters(), strict=True):
        torch.testing.assert_close(p.grad, q.grad, atol=1e-6, rtol=1e-5, msg=name)

    checkpointed.eval()
    with torch.no_grad():
        checkpointed(x)
    assert len(calls) == blocks_per_model
