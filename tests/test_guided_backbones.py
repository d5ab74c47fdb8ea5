"""Staged EDSR / RCAN / SwinIR adapters and the guided types built on them (tiny configs, CPU)."""

import copy

import pytest
import torch
from basicsr.utils.registry import ARCH_REGISTRY
from conftest import TINY_HAT

import segsr  # noqa: F401  (registers the archs)
from segsr.archs.segsr_arch import SEGSR
from segsr.clip.tiny import TINY_CLIP_MODEL
from segsr.utils.errors import SegSRError

TINY_BACKBONES = {
    'EDSR': {'num_in_ch': 3, 'num_out_ch': 3, 'num_feat': 8, 'num_block': 4},
    'RCAN': {'num_in_ch': 3, 'num_out_ch': 3, 'num_feat': 8, 'num_group': 2, 'num_block': 2, 'squeeze_factor': 4},
    'SwinIR': {'img_size': 16, 'embed_dim': 12, 'depths': [2, 2], 'num_heads': [2, 2], 'window_size': 4,
               'mlp_ratio': 1.0, 'upsampler': 'pixelshuffle'},
    'HAT': TINY_HAT,
}
GUIDED_TYPES = {'EDSR': 'GuidedEDSR', 'RCAN': 'GuidedRCAN', 'SwinIR': 'GuidedSwinIR', 'HAT': 'SEGSR'}
STAGES = {'EDSR': 4, 'RCAN': 2, 'SwinIR': 2, 'HAT': 2}
BASICSR = ('EDSR', 'RCAN', 'SwinIR')


def unguided(name: str, upscale: int, seed: int = 0, **overrides) -> torch.nn.Module:
    """The backbone as published (basicsr's class; HAT is this project's own)."""
    torch.manual_seed(seed)
    return ARCH_REGISTRY.get(name)(**{**TINY_BACKBONES[name], 'upscale': upscale, **overrides})


def staged(name: str, upscale: int, seed: int = 0, **overrides) -> torch.nn.Module:
    arch = name if name == 'HAT' else f'Staged{name}'
    torch.manual_seed(seed)
    return ARCH_REGISTRY.get(arch)(**{**TINY_BACKBONES[name], 'upscale': upscale, **overrides})


def guided(name: str, clip_file, upscale: int = 4, seed: int = 0, **overrides) -> SEGSR:
    torch.manual_seed(seed)
    options = {
        'backbone': copy.deepcopy(TINY_BACKBONES[name]), 'upscale': upscale,
        'sfem': {'model': TINY_CLIP_MODEL, 'pretrained': str(clip_file), 'lora': {'rank': 2, 'alpha': 2}},
        'slm': {'num_heads': 4}, 'lmm': {'hidden': 8}, **overrides,
    }
    return ARCH_REGISTRY.get(GUIDED_TYPES[name])(**options)


@pytest.mark.parametrize('name', BASICSR)
@pytest.mark.parametrize('upscale', [2, 3, 4])
def test_adapter_without_hook_equals_basicsr_class(name, upscale):
    original = unguided(name, upscale, seed=1).eval()
    adapter = staged(name, upscale, seed=2).eval()
    assert list(adapter.state_dict()) == list(original.state_dict())
    adapter.load_state_dict(original.state_dict(), strict=True)
    lr = torch.rand(2, 3, 16, 12)  # a window multiple: basicsr's SwinIR does not pad
    with torch.no_grad():
        assert torch.equal(adapter(lr), original(lr))


@pytest.mark.parametrize('name', BASICSR)
def test_adapter_hook_sees_every_stage_and_any_input_size_works(name):
    adapter = staged(name, 4).eval()
    seen = []

    def record(stage, feat):
        seen.append((stage, tuple(feat.shape)))
        return feat

    lr = torch.rand(1, 3, 7, 10)
    with torch.no_grad():
        plain, hooked = adapter(lr), adapter(lr, stage_hook=record)
    size = (8, 12) if name == 'SwinIR' else (7, 10)  # padded to the window multiple
    info = adapter.network_info
    assert info.num_stages == STAGES[name] and info.pad_multiple == (4 if name == 'SwinIR' else 1)
    assert seen == [(i, (1, info.num_features, *size)) for i in range(STAGES[name])]
    assert torch.equal(plain, hooked) and plain.shape == (1, 3, 28, 40)


@pytest.mark.parametrize('name', BASICSR)
def test_adapter_hook_changes_the_output_and_a_wrong_shape_is_refused(name):
    adapter = staged(name, 2).eval()
    lr = torch.rand(1, 3, 8, 8)
    with torch.no_grad():
        assert not torch.equal(adapter(lr), adapter(lr, stage_hook=lambda i, f: f * 0.5))
        with pytest.raises(SegSRError, match='stage_hook returned'):
            adapter(lr, stage_hook=lambda i, f: f[:, :1])


def test_edsr_stage_split_is_near_equal_and_checked():
    assert staged('EDSR', 4, num_block=8, num_stages=3).stage_ends == (1, 4, 7)
    assert staged('EDSR', 4, num_block=4, num_stages=1).stage_ends == (3,)
    with pytest.raises(SegSRError, match='num_stages 5'):
        staged('EDSR', 4, num_stages=5)


@pytest.mark.parametrize('name', BASICSR)
def test_adapter_refuses_an_unbuildable_scale(name):
    with pytest.raises(SegSRError, match='upscale 5'):
        staged(name, 5)


@pytest.mark.parametrize('name', list(GUIDED_TYPES))
@pytest.mark.parametrize('upscale', [2, 3, 4])
def test_guided_type_runs_forward_and_backward(name, upscale, clip_file):
    net = guided(name, clip_file, upscale)
    assert type(net.backbone).__name__ == (name if name == 'HAT' else f'Staged{name}')
    assert len(net.lmm) == STAGES[name]
    lr = torch.rand(2, 3, 7, 9)
    out, maps = net(lr, return_maps=True)
    assert out.shape == (2, 3, 7 * upscale, 9 * upscale)
    padded = [-(-size // net.network_info.pad_multiple) * net.network_info.pad_multiple for size in (7, 9)]
    assert all(m.shape == (2, 1, *padded) for m in maps)
    out.abs().mean().backward()
    for module in (net.backbone, net.lmm, net.slm):
        assert all(p.grad is not None for p in module.parameters() if p.requires_grad)


@pytest.mark.parametrize('name', list(GUIDED_TYPES))
def test_guided_type_loads_its_unguided_checkpoint(name, clip_file, tmp_path):
    original = unguided(name, 4, seed=3).eval()
    path = tmp_path / f'{name}.pth'
    torch.save({'params': original.state_dict()}, path)
    net = guided(name, clip_file, seed=4, backbone_checkpoint=str(path)).eval()
    lr = torch.rand(1, 3, 8, 12)
    with torch.no_grad():
        assert torch.equal(net.backbone(lr), original(lr))


@pytest.mark.parametrize('name', list(GUIDED_TYPES))
def test_zero_modulation_without_norm_equals_the_backbone(name, clip_file):
    net = guided(name, clip_file, lmm={'hidden': 8, 'zero_init': True, 'norm': 'none'}).eval()
    lr = torch.rand(1, 3, 9, 7)
    with torch.no_grad():
        assert torch.equal(net(lr), net.backbone(lr))
    net = guided(name, clip_file, lmm={'hidden': 8, 'norm': 'none'}).eval()
    with torch.no_grad():
        assert not torch.equal(net(lr), net.backbone(lr))


def test_guided_type_refuses_another_backbone(clip_file):
    with pytest.raises(SegSRError, match="'HAT' but GuidedEDSR guides StagedEDSR"):
        guided('EDSR', clip_file, backbone={'type': 'HAT', **TINY_BACKBONES['HAT']})


def test_plain_basicsr_backbone_points_to_its_adapter(clip_file):
    with pytest.raises(SegSRError, match='lacks the stage-hook interface.*use StagedEDSR'):
        guided('HAT', clip_file, backbone={'type': 'EDSR', **TINY_BACKBONES['EDSR']})


def test_segsr_backbone_defaults_to_hat_and_takes_any_staged_backbone(clip_file):
    assert type(guided('HAT', clip_file).backbone).__name__ == 'HAT'
    net = guided('HAT', clip_file, backbone={'type': 'StagedRCAN', **TINY_BACKBONES['RCAN']})
    assert type(net.backbone).__name__ == 'StagedRCAN'
