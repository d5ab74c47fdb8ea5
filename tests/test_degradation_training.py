"""Training with a degradation: a 4-band uint16 raster run with the sensor model, resumed bitwise; bicubic unchanged."""

from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import write_yaml
from raster_scenes import l2a_scene
from test_raster_training import SCALE, raster_train_options, scenes

from segsr.data.raster_dataset import RasterDataset
from segsr.degradations.bicubic import bicubic_downscale
from segsr.radiometry.contract import Radiometry
from segsr.training import main as train_main
from segsr.weights.files import existing_weights, load_checkpoint

BANDS = [1, 2, 3, 4]
RADIOMETRY = {'from_metadata': True, 'range': [0.0, 0.6]}
NETWORK = {'type': 'StagedEDSR', 'num_in_ch': 4, 'num_out_ch': 4, 'num_feat': 8, 'num_block': 2, 'num_stages': 2,
           'upscale': SCALE,
           'res_scale': 1, 'img_range': 1.0, 'rgb_mean': 0.2}
SENSOR = {'mtf': [0.25, 0.3, 0.35, [0.25, 0.4]], 'snr': [60, 80, 100, 120], 'reference': 0.2,
          'shift_range': 0.2, 'bits': 12}


def sensor_options(root: Path, name: str, total_iter: int) -> dict:
    options = raster_train_options(root, name, NETWORK, BANDS, RADIOMETRY, total_iter)
    options['model_type'] = 'SegSRModel'
    options['datasets']['train'] |= {'degradation': 'sensor', 'sensor': SENSOR}
    options['val'] = {'val_freq': None, 'pbar': False}
    options['logger']['save_checkpoint_freq'] = 2
    return options


def weights(path: Path) -> dict:
    return load_checkpoint(existing_weights(path))['params']


@pytest.mark.filterwarnings('ignore::rasterio.errors.NotGeoreferencedWarning')
def test_uint16_raster_run_with_the_sensor_model_resumes_bitwise(tmp_path):
    root = scenes(tmp_path / 'data', l2a_scene, bands=4)
    straight = write_yaml(tmp_path / 'straight.yml', sensor_options(root, 'straight', 4))
    train_main(['-opt', str(straight), '--root', str(tmp_path)])
    split = write_yaml(tmp_path / 'split.yml', sensor_options(root, 'split', 4))
    train_main(['-opt', str(split), '--root', str(tmp_path), '--force_yml', 'train:total_iter=2'])
    state = torch.load(tmp_path / 'experiments' / 'split' / 'training_states' / '2.state', weights_only=True)
    assert 'degradation' in state and 'rng' in state['degradation']
    train_main(['-opt', str(split), '--root', str(tmp_path), '--auto_resume'])
    first, second = (weights(tmp_path / 'experiments' / run / 'models' / 'net_g_4.pth') for run in ('straight',
                                                                                                     'split'))
    assert first.keys() == second.keys()
    for key in first:
        assert torch.equal(first[key], second[key]), key
    fresh = weights(tmp_path / 'experiments' / 'straight' / 'models' / 'net_g_2.pth')
    assert any(not torch.equal(fresh[key], first[key]) for key in first), 'it trained'
    card = load_checkpoint(existing_weights(tmp_path / 'experiments' / 'straight' / 'models' / 'net_g_4.pth'))['card']
    assert card['degradation'] == [{'type': 'sensor', **SENSOR, 'scale': SCALE}]  # the card says how LR was made


@pytest.mark.filterwarnings('ignore::rasterio.errors.NotGeoreferencedWarning')
def test_default_bicubic_data_path_is_unchanged(tmp_path):
    root = scenes(tmp_path / 'data', l2a_scene, bands=4)
    contract = Radiometry.from_options(RADIOMETRY, BANDS).to_dict()
    base = {'name': 'train', 'type': 'RasterDataset', 'dataroot_gt': str(root / 'hr'), 'bands': BANDS,
            'meta_info_file': str(root / 'splits' / 'train.txt'), 'gt_size': 16, 'scale': SCALE,
            'phase': 'train', 'contract': contract}
    item = RasterDataset(base)[0]
    expected = bicubic_downscale(np.ascontiguousarray(item['gt'].numpy().transpose(1, 2, 0)), SCALE)
    assert np.array_equal(item['lq'].numpy(), expected.transpose(2, 0, 1)), 'bicubic LR made as before'
    hr_only = RasterDataset({**base, 'degradation': 'sensor', 'sensor': SENSOR})[0]
    assert 'lq' not in hr_only and hr_only['gt'].shape == (4, 16, 16)
