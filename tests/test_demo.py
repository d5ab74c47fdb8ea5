"""The shipped CPU demos learn: after their run, the network beats bicubic upscaling on the validation images."""

import json

import pytest
import yaml
from conftest import ROOT, write_yaml

from segsr import evaluation
from segsr.training import main as train_main


def relocate(options: dict, data) -> dict:
    """Point every ``datasets/demo`` path of a shipped option file at the test's own demo data."""
    text = yaml.safe_dump(options, sort_keys=False).replace('datasets/demo', str(data))
    return yaml.safe_load(text)


@pytest.mark.slow
@pytest.mark.parametrize('name', ['demo_SEGSR_SRx4', 'demo_HAT_SRx4'])
def test_demo_beats_bicubic(demo_data, tmp_path, name):
    train_opt = relocate(yaml.safe_load((ROOT / 'options' / 'train' / f'{name}.yml').read_text()), demo_data)
    train_opt['num_gpu'] = 0
    train_opt['val']['pbar'] = False
    train_main(['-opt', str(write_yaml(tmp_path / 'train.yml', train_opt)), '--root', str(tmp_path)])

    test_opt = relocate(yaml.safe_load((ROOT / 'options' / 'test' / f'{name}.yml').read_text()), demo_data)
    test_opt['num_gpu'] = 0
    test_opt['path']['pretrain_network_g'] = str(tmp_path / 'experiments' / name / 'models' / 'net_g_latest.pth')
    test_opt['val'].update(compare_bicubic=True, save_img=False, pbar=False)
    evaluation.main(['-opt', str(write_yaml(tmp_path / 'test.yml', test_opt)), '--root', str(tmp_path)])

    average = json.loads((tmp_path / 'results' / name / 'demo_val.json').read_text())['average']
    assert average['psnr'] > average['bicubic_psnr'], average
