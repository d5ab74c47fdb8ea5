"""The shipped SEGSR / HAT option files: paper recipe, HAT-only twins, a demo network that builds."""

import copy
from pathlib import Path

import pytest
import torch
import yaml

import segsr  # noqa: F401  (registers the archs)

OPTIONS = Path(__file__).resolve().parents[1] / 'options'
EXPERIMENTS = [f'{m}_SRx{s}_{d}' for m in ('SEGSR', 'HAT') for d in ('UCMerced', 'AID') for s in (2, 3, 4)]
EXPERIMENTS += ['SEGSR_SRx4_SIRI-WHU', 'HAT_SRx4_SIRI-WHU']


def load(kind: str, name: str) -> dict:
    return yaml.safe_load((OPTIONS / kind / f'{name}.yml').read_text())


@pytest.mark.parametrize('name', EXPERIMENTS)
def test_train_and_test_options_follow_the_recipe(name):
    train, test = load('train', name), load('test', name)
    scale = train['scale']
    assert name.startswith(f"{train['network_g']['type']}_SRx{scale}_")
    assert train['model_type'] == test['model_type'] == 'SegSRModel'
    assert train['network_g'] == test['network_g']
    assert train['datasets']['train']['type'] == 'RSOnTheFlyDataset'
    assert train['datasets']['train']['gt_size'] % scale == 0
    assert test['datasets']['test_1']['meta_info_file'].endswith('/test.txt')
    recipe = train['train']
    assert recipe['optim_g'] == {'type': 'Adam', 'lr': 2e-4, 'weight_decay': 0, 'betas': [0.9, 0.99]}
    assert recipe['scheduler'] == {'type': 'MultiStepLR', 'milestones': [50000], 'gamma': 0.5}
    assert (recipe['total_iter'], recipe['ema_decay'], train['manual_seed']) == (64000, 0.999, 0)
    for options in (train, test):
        for metric in options['val']['metrics'].values():
            assert metric['crop_border'] == scale and metric['test_y_channel'] is True


@pytest.mark.parametrize('name', [n for n in EXPERIMENTS if n.startswith('SEGSR')])
def test_hat_twin_is_the_segsr_backbone(name):
    segsr_net = load('train', name)['network_g']
    assert load('train', name.replace('SEGSR', 'HAT', 1))['network_g'] == segsr_net['backbone']
    assert segsr_net['sfem']['lora'] == {'rank': 32, 'alpha': 32, 'dropout': 0.05,
                                         'targets': ['q', 'k', 'v', 'c_fc', 'c_proj']}


def test_demo_network_builds_and_runs(clip_file):
    from basicsr.archs import build_network

    options = copy.deepcopy(load('train', 'demo_SEGSR_SRx4')['network_g'])
    assert options['sfem']['pretrained'] == 'datasets/demo/tiny_clip.pt'
    options['sfem']['pretrained'] = str(clip_file)
    network = build_network(options).eval()
    with torch.no_grad():
        assert network(torch.rand(1, 3, 16, 20)).shape == (1, 3, 64, 80)
