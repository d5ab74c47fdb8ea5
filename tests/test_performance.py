"""Speed options: bf16 close to fp32, compiled equal to eager, amp/scaler plumbing, caches, loader defaults."""

import copy
import math

import pytest
import torch
from conftest import TINY_HAT

import segsr  # noqa: F401  (registers archs and models)
from segsr.archs.hat_arch import HAT
from segsr.archs.segsr_arch import SEGSR
from segsr.clip.tiny import TINY_CLIP_MODEL
from segsr.data.loaders import apply_loader_defaults
from segsr.models.precision import Performance
from segsr.models.sr_model import SegSRModel
from segsr.utils.errors import SegSRError

TINY_HAT_X4 = {**TINY_HAT, 'upscale': 4}


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    return 10 * math.log10(1 / (a.float() - b.float()).pow(2).mean().item())


def perturbed(net: torch.nn.Module, std: float = 0.02, seed: int = 1) -> torch.nn.Module:
    """Move every parameter off its init so that each one shapes the output."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for param in net.parameters():
            param.add_(torch.randn(param.shape, generator=gen) * std)
    return net


def tiny_hat(**overrides) -> HAT:
    torch.manual_seed(0)
    return perturbed(HAT(**{**TINY_HAT_X4, **overrides}))


def tiny_segsr(clip_file, **sfem) -> SEGSR:
    torch.manual_seed(0)
    backbone = {'type': 'HAT', **TINY_HAT_X4}
    net = SEGSR(backbone=copy.deepcopy(backbone), upscale=4, slm={'num_heads': 4}, lmm={'hidden': 8},
                sfem={'model': TINY_CLIP_MODEL, 'pretrained': str(clip_file),
                      'lora': {'rank': 4, 'alpha': 4, 'dropout': 0.0}, **sfem})
    return perturbed(net)


# --- bf16 against fp32 -----------------------------------------------------------------------------


def bf16_and_fp32(net: torch.nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    net.eval()
    with torch.no_grad():
        reference = net(x)
        with torch.autocast('cpu', dtype=torch.bfloat16):
            low = net(x)
    return reference, low


def test_bf16_hat_forward_is_finite_and_close_to_fp32():
    net = tiny_hat()
    reference, low = bf16_and_fp32(net, torch.rand(2, 3, 10, 13))
    assert torch.isfinite(low).all()
    assert reference.std() > 0.02  # the network shapes the output, so the comparison means something
    assert 40 < psnr(reference, low) < 100  # close, yet bf16 did run
    ((_, _, _, dtype),) = [key for key, _ in net.shift_masks.items() if key[3] != torch.float32]
    assert dtype == torch.bfloat16  # the mask followed the compute dtype


def test_bf16_segsr_forward_is_finite_and_close_to_fp32(clip_file):
    net = tiny_segsr(clip_file)
    reference, low = bf16_and_fp32(net, torch.rand(1, 3, 12, 12))
    assert torch.isfinite(low).all()
    assert 40 < psnr(reference, low) < 100


def test_half_precision_clip_tower_keeps_layer_norms_in_float32(clip_file):
    net = tiny_segsr(clip_file, dtype='bfloat16')
    norms = [m for m in net.sfem.tower.modules() if isinstance(m, torch.nn.LayerNorm)]
    assert norms and all(m.weight.dtype == torch.float32 for m in norms)
    assert net.sfem.tower.conv1.weight.dtype == torch.bfloat16
    reference = tiny_segsr(clip_file).eval()
    with torch.no_grad():
        x = torch.rand(1, 3, 12, 12)
        assert psnr(reference(x), net.eval()(x)) > 40


# --- compiled against eager -----------------------------------------------------------------------


def assert_compiled_matches_eager_with_one_graph(build, sizes) -> None:
    """Two identically seeded networks, one compiled: equal outputs for every size, one graph for them all."""
    torch._dynamo.reset()
    torch._dynamo.utils.counters.clear()
    eager, compiled = build().eval(), build().eval()
    Performance(compile={'mode': 'default', 'dynamic': False, 'fullgraph': False}).prepare_network(compiled)
    assert set(compiled.state_dict()) == set(eager.state_dict())
    with torch.no_grad():
        for size in sizes:
            x = torch.rand(1, 3, *size)
            torch.testing.assert_close(compiled(x), eager(x), atol=1e-4, rtol=1e-4)
    assert torch._dynamo.utils.counters['stats']['unique_graphs'] == 1


def test_compiled_hat_matches_eager_and_reuses_the_graph_within_a_size_bucket():
    # both sizes pad to 8x8
    assert_compiled_matches_eager_with_one_graph(lambda: tiny_hat(depths=[1], num_heads=[2]), ((7, 8), (8, 5)))


def test_compiled_segsr_matches_eager_with_one_graph_for_sizes_that_pad_alike(clip_file):
    """CLIP tower, similarity maps and modulated HAT compile together (about a minute on two CPU cores)."""
    assert_compiled_matches_eager_with_one_graph(lambda: tiny_segsr(clip_file), ((16, 16), (15, 13)))


# --- option plumbing and the training step --------------------------------------------------------


def model_options(amp: str, **extra) -> dict:
    return {
        'name': 'amp', 'model_type': 'SegSRModel', 'scale': 4, 'num_gpu': 0, 'is_train': True, 'dist': False,
        'rank': 0, 'world_size': 1, 'network_g': {'type': 'HAT', **TINY_HAT_X4, 'depths': [1], 'num_heads': [2]},
        'path': {'pretrain_network_g': None},
        'train': {
            'amp': amp, 'ema_decay': 0.5,
            'optim_g': {'type': 'Adam', 'lr': 1e-3, 'betas': [0.9, 0.99]},
            'scheduler': {'type': 'MultiStepLR', 'milestones': [10], 'gamma': 0.5},
            'pixel_opt': {'type': 'L1Loss', 'loss_weight': 1.0, 'reduction': 'mean'},
        },
        **extra,
    }


@pytest.mark.parametrize('amp', ['bf16', 'fp16', 'off'])
def test_amp_option_trains_a_step_on_cpu(amp):
    model = SegSRModel(model_options(amp, performance={'channels_last': True}))
    expected = {'bf16': torch.bfloat16, 'fp16': torch.float16, 'off': None}[amp]
    assert model.performance.train_amp == model.performance.eval_amp == expected
    before = {n: p.detach().clone() for n, p in model.net_g.named_parameters()}
    gen = torch.Generator().manual_seed(0)
    model.feed_data({'lq': torch.rand(2, 3, 8, 8, generator=gen), 'gt': torch.rand(2, 3, 32, 32, generator=gen)})
    model.optimize_parameters(1)
    assert math.isfinite(model.log_dict['l_pix'])
    assert model.output.dtype == torch.float32
    assert model.performance.scaler(torch.device('cpu')).is_enabled() == (amp == 'fp16')
    changed = [n for n, p in model.net_g.named_parameters() if not torch.equal(p, before[n])]
    assert 'conv_first.weight' in changed
    assert model.net_g.conv_first.weight.is_contiguous(memory_format=torch.channels_last)
    model.test()
    assert model.output.dtype == torch.float32 and torch.isfinite(model.output).all()
    state = {'grad_scaler': model.performance.scaler(torch.device('cpu')).state_dict()}
    assert ('scale' in state['grad_scaler']) == (amp == 'fp16')


@pytest.mark.parametrize(
    'options, message',
    [
        ({'train': {'amp': 'fp8'}}, 'train.amp'),
        ({'val': {'amp': 'half'}}, 'val.amp'),
        ({'performance': {'compile': {'mode': 'fast'}}}, 'compile.mode'),
    ],
)
def test_bad_performance_options_raise_one_line_errors(options, message):
    with pytest.raises(SegSRError, match=message) as info:
        Performance.from_options(options)
    assert '\n' not in str(info.value)


def test_validation_amp_follows_training_unless_set():
    assert Performance.from_options({'train': {'amp': 'bf16'}}).eval_amp == torch.bfloat16
    assert Performance.from_options({'train': {'amp': 'bf16'}, 'val': {'amp': 'off'}}).eval_amp is None
    assert Performance.from_options({'train': {'amp': False}}).train_amp is None


# --- caches ---------------------------------------------------------------------------------------


def test_gathered_bias_is_reused_in_eval_and_refreshed_when_the_table_changes():
    net = tiny_hat().eval()
    attn = net.layers[0].residual_group.blocks[0].attn
    index = net.relative_position_index_SA
    x = torch.rand(1, 3, 8, 8)
    with torch.no_grad():
        first = attn.relative_bias(index, torch.float32)
        assert attn.relative_bias(index, torch.float32).data_ptr() == first.data_ptr()
        before = net(x)
        step = torch.randn_like(attn.relative_position_bias_table)
        attn.relative_position_bias_table.add_(step)  # e.g. an optimizer step or a weight load
        refreshed = attn.relative_bias(index, torch.float32)
        assert refreshed.data_ptr() != first.data_ptr()
        torch.testing.assert_close(refreshed, attn.bias_cache.get(attn.relative_position_bias_table, index,
                                                                  torch.float32, training=True).unsqueeze(0))
        assert not torch.allclose(net(x), before)
        attn.relative_position_bias_table.data.sub_(step)  # invisible to the version counter (as EMA does)
        net.eval()  # every mode switch forgets the cache
        torch.testing.assert_close(net(x), before)


def test_training_gathers_the_bias_every_call_so_gradients_reach_the_table():
    net = tiny_hat().train()
    attn = net.layers[0].residual_group.blocks[0].attn
    index = net.relative_position_index_SA
    first = attn.relative_bias(index, torch.float32)
    assert attn.relative_bias(index, torch.float32).data_ptr() != first.data_ptr()
    net(torch.rand(1, 3, 8, 8)).mean().backward()
    assert attn.relative_position_bias_table.grad.abs().sum() > 0


def test_frozen_clip_without_lora_runs_without_autograd(clip_file):
    net = tiny_segsr(clip_file, lora={'rank': 0})
    assert not any(p.requires_grad for p in net.sfem.parameters())
    image_embedding, patches = net.sfem(torch.rand(1, 3, 8, 8))
    assert image_embedding.grad_fn is None and patches.grad_fn is None
    assert net(torch.rand(1, 3, 8, 8)).grad_fn is not None


# --- data loading ---------------------------------------------------------------------------------


def test_loader_defaults_pin_memory_on_gpu_runs_and_keep_workers_alive():
    gpu = {'num_worker_per_gpu': 4}
    apply_loader_defaults(gpu, num_gpu=1)
    assert gpu['pin_memory'] and gpu['persistent_workers']
    cpu = {'num_worker_per_gpu': 2, 'persistent_workers': False}
    apply_loader_defaults(cpu, num_gpu=0)
    assert not cpu['pin_memory'] and not cpu['persistent_workers']


def test_option_schema_accepts_the_performance_options_and_rejects_typos():
    from segsr.options.schema import validate_options

    opt = {
        'name': 'x', 'network_g': {'type': 'HAT'}, 'datasets': {'train': {'name': 't', 'type': 'T',
                                                                        'batch_size_per_gpu': 1}},
        'train': {'total_iter': 1, 'amp': 'bf16'}, 'val': {'amp': False},
        'performance': {'channels_last': True, 'tf32': True, 'compile': {'mode': 'default', 'dynamic': None}},
    }
    validate_options(opt, 'x.yml', is_train=True)
    for performance, message in (({'compile': {'dynamc': True}}, 'performance.compile.dynamc: unknown key'),
                                 ({'jit': True}, 'performance.jit: unknown key'),
                                 ({'compile': 'yes'}, 'performance.compile: expected true/false or a mapping')):
        opt['performance'] = performance
        with pytest.raises(SegSRError, match=message):
            validate_options(opt, 'x.yml', is_train=True)
