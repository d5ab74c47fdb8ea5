"""Option files of EDSR, RCAN, SwinIR (and HAT demo) with and without guidance: twins differ only by guidance."""

import copy
from pathlib import Path

import pytest
import torch
import yaml
from basicsr.archs import build_network

import segsr  # noqa: F401  (registers the archs)

OPTIONS = Path(__file__).resolve().parents[1] / 'options'
BACKBONES = ('EDSR', 'RCAN', 'SwinIR')
LEARNING_RATES = {'EDSR': 1e-4, 'RCAN': 1e-4, 'SwinIR': 2e-4}
DATASETS = ('UCMerced', 'AID')


def load(kind: str, name: str) -> dict:
    return yaml.safe_load((OPTIONS / kind / f'{name}.yml').read_text())


def guided_demo(backbone: str) -> str:
    """The guided twin of a demo: SeG-SR itself (demo_SEGSR) for HAT, demo_Guided<X> for the others."""
    return 'demo_SEGSR_SRx4' if backbone == 'HAT' else f'demo_Guided{backbone}_SRx4'


def without_type(network: dict) -> dict:
    return {k: v for k, v in network.items() if k != 'type'}


@pytest.mark.parametrize('dataset', DATASETS)
@pytest.mark.parametrize('backbone', BACKBONES)
def test_full_options_are_twins_on_the_segsr_recipe(backbone, dataset):
    segsr_train = load('train', f'SEGSR_SRx4_{dataset}')
    plain_train, plain_test = load('train', f'{backbone}_SRx4_{dataset}'), load('test', f'{backbone}_SRx4_{dataset}')
    guided_train, guided_test = (load('train', f'Guided{backbone}_SRx4_{dataset}'),
                                 load('test', f'Guided{backbone}_SRx4_{dataset}'))
    assert plain_train['network_g']['type'] == f'Staged{backbone}'
    assert guided_train['network_g']['type'] == f'Guided{backbone}'
    assert plain_train['network_g'] == plain_test['network_g'] and guided_train['network_g'] == guided_test['network_g']
    assert guided_train['network_g']['backbone'] == without_type(plain_train['network_g'])
    for key in ('sfem', 'slm', 'lmm'):
        assert guided_train['network_g'][key] == segsr_train['network_g'][key]
    for options in (plain_train, guided_train):
        assert options['datasets'] == segsr_train['datasets']
        recipe = options['train']
        assert recipe['optim_g']['lr'] == LEARNING_RATES[backbone]
        assert (recipe['total_iter'], recipe['scheduler']['milestones'], recipe['ema_decay']) == (64000, [50000], 0.999)
        assert options['datasets']['train']['batch_size_per_gpu'] == 4
    assert plain_test['datasets'] == guided_test['datasets'] == load('test', f'SEGSR_SRx4_{dataset}')['datasets']
    assert plain_test['path']['pretrain_network_g'] == f'experiments/{backbone}_SRx4_{dataset}/models/net_g_latest.pth'


@pytest.mark.parametrize('backbone', BACKBONES)
def test_full_size_backbone_builds(backbone):
    network = build_network(copy.deepcopy(load('train', f'{backbone}_SRx4_UCMerced')['network_g']))
    assert network.network_info.num_stages == {'EDSR': 4, 'RCAN': 10, 'SwinIR': 6}[backbone]


@pytest.mark.parametrize('backbone', BACKBONES + ('HAT',))
def test_demo_twins_share_backbone_and_schedule_and_run(backbone, clip_file):
    plain, guided = load('train', f'demo_{backbone}_SRx4'), load('train', guided_demo(backbone))
    for kind in ('train', 'test'):
        assert load(kind, guided_demo(backbone))['network_g'] == guided['network_g']
    assert without_type(guided['network_g']['backbone']) == without_type(plain['network_g'])
    assert guided['train'] == plain['train'] and guided['datasets'] == plain['datasets']
    assert guided['network_g']['lmm']['zero_init'] is True and guided['network_g']['lmm']['norm'] == 'none'

    options = copy.deepcopy(guided['network_g'])
    options['sfem']['pretrained'] = str(clip_file)
    net, twin = build_network(options).eval(), build_network(copy.deepcopy(plain['network_g'])).eval()
    twin.load_state_dict(net.backbone.state_dict(), strict=True)
    lr = torch.rand(1, 3, 16, 20)
    with torch.no_grad():
        assert torch.equal(net(lr), twin(lr)) and net(lr).shape == (1, 3, 64, 80)
