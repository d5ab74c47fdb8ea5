"""Networks on any band count: HAT, the staged EDSR/RCAN/SwinIR, their guided versions, CLIP's band choice,
training, ONNX export, tiling and self-ensemble on multi-band inputs (tiny configs, CPU)."""

import copy
import re
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
import yaml
from basicsr.archs.edsr_arch import EDSR
from basicsr.utils.registry import ARCH_REGISTRY, DATASET_REGISTRY
from conftest import TINY_HAT, train_options, write_yaml
from test_guided_backbones import GUIDED_TYPES, TINY_BACKBONES

import segsr  # noqa: F401  (registers the archs)
from segsr.clip.tiny import TINY_CLIP_MODEL
from segsr.options.network import network_option_problems
from segsr.training import main as train_main
from segsr.utils.errors import SegSRError
from segsr.weights.network import load_network

BAND_COUNTS = (1, 4, 6)
BACKBONE_ARCHS = {'HAT': 'HAT', 'EDSR': 'StagedEDSR', 'RCAN': 'StagedRCAN', 'SwinIR': 'StagedSwinIR'}
BAND_KEY = {'HAT': 'in_chans', 'SwinIR': 'in_chans', 'EDSR': 'num_in_ch', 'RCAN': 'num_in_ch'}


def backbone_options(name: str, bands: int) -> dict:
    options = copy.deepcopy(TINY_BACKBONES[name])
    options[BAND_KEY[name]] = bands
    if name in ('EDSR', 'RCAN'):
        options['num_out_ch'] = bands
    return options


def rgb_bands_for(bands: int) -> int | list[int] | None:
    """Three bands for CLIP: the 3rd, 2nd and 1st of a multi-band input, the only band of a 1-band one."""
    return None if bands == 3 else 1 if bands == 1 else [3, 2, 1]


def sfem_options(clip_file, bands: int, **extra) -> dict:
    return {'model': TINY_CLIP_MODEL, 'pretrained': str(clip_file), 'lora': {'rank': 2, 'alpha': 2},
            'rgb_bands': rgb_bands_for(bands), **extra}


def guided_network(name: str, bands: int, clip_file, upscale: int = 2, seed: int = 0, **sfem_extra):
    torch.manual_seed(seed)
    return ARCH_REGISTRY.get(GUIDED_TYPES[name])(
        backbone=backbone_options(name, bands), upscale=upscale, sfem=sfem_options(clip_file, bands, **sfem_extra),
        slm={'num_heads': 4}, lmm={'hidden': 8})


def randomise_lmm(network) -> None:
    """LMM convs drawn away from their init, so that the guidance visibly modulates the features."""
    generator = torch.Generator().manual_seed(7)
    with torch.no_grad():
        for parameter in network.lmm.parameters():
            parameter.copy_(torch.randn(parameter.shape, generator=generator) * 0.1)


# --- forward on any band count ---------------------------------------------------------------------------


@pytest.mark.parametrize('bands', BAND_COUNTS)
@pytest.mark.parametrize('name', list(BACKBONE_ARCHS))
def test_backbone_takes_and_returns_any_band_count(name, bands):
    torch.manual_seed(0)
    network = ARCH_REGISTRY.get(BACKBONE_ARCHS[name])(**backbone_options(name, bands), upscale=2).eval()
    info = network.network_info
    assert (info.in_chans, info.out_chans) == (bands, bands)
    with torch.no_grad():
        out = network(torch.rand(2, bands, 9, 7))
    assert out.shape == (2, bands, 18, 14)
    assert network.mean.shape == (1, bands, 1, 1)


@pytest.mark.parametrize('bands', BAND_COUNTS)
@pytest.mark.parametrize('name', list(GUIDED_TYPES))
def test_guided_network_on_any_band_count_trains(name, bands, clip_file):
    network = guided_network(name, bands, clip_file)
    assert network.network_info.in_chans == network.network_info.out_chans == bands
    out, maps = network(torch.rand(2, bands, 9, 7), return_maps=True)
    assert out.shape == (2, bands, 18, 14) and len(maps) == len(network.lmm)
    out.abs().mean().backward()
    for module in (network.backbone, network.lmm, network.slm):
        assert all(p.grad is not None for p in module.parameters() if p.requires_grad)
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in network.sfem.parameters() if p.requires_grad)


@pytest.mark.parametrize('name', list(GUIDED_TYPES))
def test_guidance_modulates_every_band(name, clip_file):
    network = guided_network(name, 6, clip_file).eval()
    randomise_lmm(network)
    lr = torch.rand(1, 6, 8, 8)
    with torch.no_grad():
        guided, plain = network(lr), network.backbone(lr)
    change = (guided - plain).abs().amax(dim=(0, 2, 3))
    assert change.shape == (6,) and bool((change > 1e-4).all())


# --- the band mean -----------------------------------------------------------------------------------------


@pytest.mark.parametrize('name', list(BACKBONE_ARCHS))
def test_band_mean_defaults_to_rgb_on_three_bands_and_one_half_elsewhere(name):
    arch = ARCH_REGISTRY.get(BACKBONE_ARCHS[name])
    rgb = arch(**backbone_options(name, 3), upscale=2).mean
    assert torch.equal(rgb, EDSR(3, 3).mean)  # basicsr's own RGB mean tensor, bit for bit
    assert torch.equal(arch(**backbone_options(name, 4), upscale=2).mean, torch.full((1, 4, 1, 1), 0.5))
    option = 'rgb_mean' if name in ('EDSR', 'RCAN') else 'band_mean'
    given = arch(**backbone_options(name, 4), upscale=2, **{option: [0.1, 0.2, 0.3, 0.4]}).mean
    assert torch.equal(given.flatten(), torch.tensor([0.1, 0.2, 0.3, 0.4]))
    assert torch.equal(arch(**backbone_options(name, 4), upscale=2, **{option: 0}).mean, torch.zeros(1, 4, 1, 1))
    with pytest.raises(SegSRError, match=f'{option} is \\[0.1, 0.2\\]; give one number, or one per band \\(4'):
        arch(**backbone_options(name, 4), upscale=2, **{option: [0.1, 0.2]})


@pytest.mark.parametrize('name', ['EDSR', 'RCAN'])
def test_conv_backbone_refuses_other_output_bands_than_input_bands(name):
    with pytest.raises(SegSRError, match='num_out_ch 3 differs from num_in_ch 4'):
        ARCH_REGISTRY.get(BACKBONE_ARCHS[name])(**{**backbone_options(name, 4), 'num_out_ch': 3}, upscale=2)


def test_band_mean_is_subtracted_and_added_back():
    """A network whose body and head are zero returns its band mean: the mean is added back per band."""
    network = ARCH_REGISTRY.get('StagedEDSR')(**backbone_options('EDSR', 4), upscale=2,
                                              rgb_mean=[0.1, 0.2, 0.3, 0.4]).eval()
    with torch.no_grad():
        for parameter in network.conv_last.parameters():
            parameter.zero_()
        out = network(torch.rand(1, 4, 5, 5))
    assert torch.allclose(out, torch.tensor([0.1, 0.2, 0.3, 0.4]).view(1, 4, 1, 1).expand_as(out))


# --- what CLIP sees ----------------------------------------------------------------------------------------


def clip_input(network, lr: torch.Tensor) -> torch.Tensor:
    seen = []
    handle = network.sfem.tower.conv1.register_forward_pre_hook(lambda module, args: seen.append(args[0]))
    with torch.no_grad():
        network(lr)
    handle.remove()
    return seen[0]


def expected_clip_input(network, lr: torch.Tensor, bands: list[int], low, high) -> torch.Tensor:
    """Bands picked (0-based), resized as SFEM resizes, mapped low..high -> 0..1, then CLIP's mean and std."""
    sfem = network.sfem
    size = sfem.clip_input_size(*lr.shape[-2:])
    image = F.interpolate(lr[:, bands], size=size, mode='bilinear', align_corners=False)
    low, high = (torch.as_tensor(v, dtype=torch.float32).view(1, -1, 1, 1) for v in (low, high))
    clip_mean = torch.tensor(sfem_clip_config().mean).view(1, 3, 1, 1)
    clip_std = torch.tensor(sfem_clip_config().std).view(1, 3, 1, 1)
    return ((image - low) / (high - low) - clip_mean) / clip_std


def sfem_clip_config():
    from segsr.clip.loader import load_clip

    return load_clip(TINY_CLIP_MODEL, None)


def test_clip_sees_the_named_bands_through_the_display_range(clip_file):
    lr = torch.rand(1, 4, 8, 8) * 0.4
    network = guided_network('HAT', 4, clip_file, display_range=[[0, 0.4], [0, 0.3], [0.1, 0.5]]).eval()
    expected = expected_clip_input(network, lr, [2, 1, 0], [0, 0, 0.1], [0.4, 0.3, 0.5])
    torch.testing.assert_close(clip_input(network, lr), expected, atol=1e-5, rtol=1e-5)

    single = guided_network('HAT', 4, clip_file, rgb_bands=4, display_range=[0.1, 0.3]).eval()
    expected = expected_clip_input(single, lr, [3, 3, 3], 0.1, 0.3)
    torch.testing.assert_close(clip_input(single, lr), expected, atol=1e-5, rtol=1e-5)


def test_three_bands_without_band_options_feed_clip_as_before(clip_file):
    """On 3 bands the default leaves CLIP's input as it was; naming bands 1, 2, 3 over 0..1 is the same input."""
    lr = torch.rand(1, 3, 8, 8)
    default = guided_network('HAT', 3, clip_file).eval()
    assert default.sfem.band_index is None
    torch.testing.assert_close(clip_input(default, lr), expected_clip_input(default, lr, [0, 1, 2], 0, 1),
                               atol=0, rtol=0)
    explicit = guided_network('HAT', 3, clip_file, rgb_bands=[1, 2, 3], display_range=[0, 1]).eval()
    with torch.no_grad():
        assert torch.equal(explicit(lr), default(lr))


@pytest.mark.parametrize(('sfem', 'message'), [
    ({}, r'rgb_bands: missing; the network takes 4 band\(s\), CLIP sees 3'),
    ({'rgb_bands': [5, 2, 1]}, r'rgb_bands is \[5, 2, 1\]; give three band numbers \(or one\) from 1 to 4'),
    ({'rgb_bands': [0, 1, 2]}, 'from 1 to 4'),
    ({'rgb_bands': [1, 2]}, 'give three band numbers'),
    ({'rgb_bands': 1, 'display_range': [1, 0]}, r'display_range is \[1, 0\]; give \[low, high\] with low < high'),
    ({'rgb_bands': 1, 'display_range': [[0, 1], [0, 1]]}, 'or three such pairs'),
])
def test_wrong_band_options_are_one_line_in_the_option_check_and_the_constructor(sfem, message, clip_file):
    options = {'type': 'SEGSR', 'upscale': 2, 'backbone': {**TINY_HAT, 'in_chans': 4},
               'sfem': {'model': TINY_CLIP_MODEL, 'pretrained': str(clip_file), **sfem}}
    problems = network_option_problems({'network_g': options})
    assert len(problems) == 1 and '\n' not in problems[0]
    assert problems[0].startswith('network_g.sfem.') and re.search(message, problems[0])
    with pytest.raises(SegSRError, match=message):
        ARCH_REGISTRY.get('SEGSR')(**{k: v for k, v in copy.deepcopy(options).items() if k != 'type'})


def test_option_check_reads_the_band_count_of_flat_and_nested_backbones(clip_file):
    sfem = {'model': TINY_CLIP_MODEL, 'pretrained': str(clip_file)}
    flat = {'type': 'SEGSR', 'upscale': 2, **TINY_HAT, 'in_chans': 6, 'sfem': sfem}
    assert 'rgb_bands: missing; the network takes 6' in network_option_problems({'network_g': flat})[0]
    conv = {'type': 'GuidedRCAN', 'upscale': 2, 'backbone': backbone_options('RCAN', 4), 'sfem': sfem}
    assert 'rgb_bands: missing; the network takes 4' in network_option_problems({'network_g': conv})[0]
    assert network_option_problems({'network_g': {**conv, 'sfem': {**sfem, 'rgb_bands': [3, 2, 1]}}}) == []
    three = {'type': 'SEGSR', 'upscale': 2, 'backbone': dict(TINY_HAT), 'sfem': sfem}
    assert network_option_problems({'network_g': three}) == []


@pytest.mark.parametrize('name', ['EDSR', 'RCAN'])
def test_option_check_points_basicsr_conv_nets_on_other_band_counts_to_their_staged_versions(name):
    options = {'type': name, 'upscale': 2, **backbone_options(name, 4)}
    assert network_option_problems({'network_g': options}) == [
        f"network_g.num_in_ch: basicsr's {name} subtracts a 3-band RGB mean and cannot take 4 bands; "
        f'use type: Staged{name} (the same network, any band count)']
    assert network_option_problems({'network_g': {**options, 'type': f'Staged{name}'}}) == []


# --- training through train.py -------------------------------------------------------------------------------


class MultibandPairs(torch.utils.data.Dataset):
    """``count`` smooth random ``bands``-band HR patches in [0, 1] and their bicubic LR, in memory: the networks'
    side of multi-band training, apart from how rasters are read."""

    def __init__(self, opt: dict):
        generator = torch.Generator().manual_seed(0)
        coarse = torch.rand(opt['count'], opt['bands'], opt['gt_size'] // 4, opt['gt_size'] // 4, generator=generator)
        self.gt = F.interpolate(coarse, size=opt['gt_size'], mode='bilinear', align_corners=False)
        self.lq = F.interpolate(self.gt, scale_factor=1 / opt['scale'], mode='bicubic', antialias=True,
                                align_corners=False)

    def __len__(self) -> int:
        return len(self.gt)

    def __getitem__(self, index: int) -> dict:
        return {'lq': self.lq[index], 'gt': self.gt[index], 'lq_path': f'{index}', 'gt_path': f'{index}'}


if 'MultibandPairs' not in DATASET_REGISTRY:
    DATASET_REGISTRY.register()(MultibandPairs)


def multiband_train_options(name: str, network: dict, bands: int = 4) -> dict:
    options = train_options(Path(), name, network, total_iter=2)
    options['scale'] = 2
    options['datasets'] = {'train': {'name': 'bands4', 'type': 'MultibandPairs', 'bands': bands, 'count': 4,
                                     'gt_size': 16, 'scale': 2, 'num_worker_per_gpu': 0, 'batch_size_per_gpu': 2,
                                     'dataset_enlarge_ratio': 1}}
    options['val'] = {'val_freq': None}
    return options


@pytest.mark.parametrize('kind', ['HAT', 'SEGSR'])
def test_tiny_network_trains_on_four_bands_and_its_checkpoint_runs_them(kind, clip_file, tmp_path):
    hat = {**TINY_HAT, 'in_chans': 4, 'upscale': 2}
    network = {'type': 'HAT', **hat} if kind == 'HAT' else {
        'type': 'SEGSR', 'upscale': 2, 'backbone': {**TINY_HAT, 'in_chans': 4},
        'sfem': {'model': TINY_CLIP_MODEL, 'pretrained': str(clip_file), 'lora': {'rank': 2, 'alpha': 2},
                 'rgb_bands': [3, 2, 1], 'display_range': [0, 0.8]},
        'slm': {'num_heads': 4}, 'lmm': {'hidden': 8}}
    options = multiband_train_options(f'bands4_{kind}', network)
    option_file = write_yaml(tmp_path / 'train.yml', options)
    train_main(['-opt', str(option_file), '--root', str(tmp_path)])
    weights = tmp_path / 'experiments' / f'bands4_{kind}' / 'models' / 'net_g_2.pth'
    stored = torch.load(weights, weights_only=True)['network_g']
    assert stored == yaml.safe_load(option_file.read_text())['network_g']  # band choice and display range included
    net, _ = load_network(weights)
    assert net.network_info.in_chans == 4
    with torch.no_grad():
        out = net(torch.rand(1, 4, 10, 6))
    assert out.shape == (1, 4, 20, 12) and torch.isfinite(out).all()


def test_train_py_names_the_missing_rgb_bands_in_one_line_before_it_builds_anything(clip_file, tmp_path):
    network = {'type': 'SEGSR', 'upscale': 2, 'backbone': {**TINY_HAT, 'in_chans': 4},
               'sfem': {'model': TINY_CLIP_MODEL, 'pretrained': str(clip_file)}}
    option_file = write_yaml(tmp_path / 'train.yml', multiband_train_options('no_rgb_bands', network))
    with pytest.raises(SystemExit) as stop:
        train_main(['-opt', str(option_file), '--root', str(tmp_path)])
    message = str(stop.value.code)
    assert message.startswith('error: 1 problem in option file') and '\n' not in message
    assert 'network_g.sfem.rgb_bands: missing; the network takes 4 band(s)' in message
    assert not (tmp_path / 'experiments').exists()
