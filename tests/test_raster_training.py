"""Training, testing and inference on multi-band uint16 rasters through one radiometric contract."""

import json
from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch
from conftest import TINY_HAT, write_yaml
from raster_scenes import L2A_ADD_OFFSET, L2A_QUANTIFICATION, l2a_scene, scaled_scene

from segsr import evaluation
from segsr.clip.tiny import TINY_CLIP_MODEL
from segsr.data.raster_splits import SplitPlan, make_raster_splits
from segsr.infer import main as infer_main
from segsr.options import spectral_metrics
from segsr.radiometry.contract import Radiometry
from segsr.training import main as train_main
from segsr.weights.network import load_network

SCALE = 2


def scenes(root: Path, write, bands: int) -> Path:
    """Two 96-pixel scenes (one with a nodata corner where the writer takes one) and their split lists."""
    (root / 'hr').mkdir(parents=True)
    write(root / 'hr' / 'a.tif', bands=bands, size=96, seed=0)
    write(root / 'hr' / 'b.tif', bands=bands, size=96, seed=5)
    make_raster_splits(str(root / 'hr'), root / 'splits', SplitPlan(32, 16, 16, (0.5, 0.25, 0.25), 0, SCALE))
    return root


def raster_dataset(root: Path, split: str, bands: list[int], **extra) -> dict:
    return {'name': f'scenes_{split}', 'type': 'RasterDataset', 'dataroot_gt': str(root / 'hr'),
            'meta_info_file': str(root / 'splits' / f'{split}.txt'), 'bands': bands, **extra}


def raster_train_options(root: Path, name: str, network: dict, bands: list[int], radiometry: dict,
                         total_iter: int = 2) -> dict:
    return {
        'name': name, 'model_type': 'HATModel', 'scale': SCALE, 'num_gpu': 0, 'manual_seed': 0,
        'radiometry': radiometry,
        'datasets': {
            'train': raster_dataset(root, 'train', bands, gt_size=16, use_hflip=True, use_rot=True,
                                    num_worker_per_gpu=0, batch_size_per_gpu=2, dataset_enlarge_ratio=1),
            'val': raster_dataset(root, 'val', bands),
        },
        'network_g': network,
        'path': {'pretrain_network_g': None, 'strict_load_g': True, 'resume_state': None},
        'train': {
            'ema_decay': 0.999, 'optim_g': {'type': 'Adam', 'lr': 1e-3, 'betas': [0.9, 0.99]},
            'scheduler': {'type': 'MultiStepLR', 'milestones': [100], 'gamma': 0.5},
            'total_iter': total_iter, 'pixel_opt': {'type': 'L1Loss', 'loss_weight': 1.0, 'reduction': 'mean'},
        },
        'val': {'val_freq': total_iter, 'pbar': False, 'compare_bicubic': True, 'metrics': spectral_metrics(SCALE)},
        # torch files, as conftest.train_options: these tests read the weights with torch.load
        'logger': {'print_freq': 1, 'save_checkpoint_freq': total_iter, 'use_tb_logger': False,
                   'save_checkpoint_format': 'pth'},
    }


def train_resume_test(tmp_path: Path, options: dict) -> tuple[Path, dict]:
    """Train 2 iterations, resume to 4, test on the held-out windows; return the weights and the test result."""
    opt_file = write_yaml(tmp_path / 'train.yml', options)
    train_main(['-opt', str(opt_file), '--root', str(tmp_path)])
    train_main(['-opt', str(opt_file), '--root', str(tmp_path), '--auto_resume', '--force_yml',
                'train:total_iter=4'])
    experiment = tmp_path / 'experiments' / options['name']
    state = torch.load(experiment / 'training_states' / '4.state', weights_only=True)
    assert {int(s['step']) for s in state['optimizers'][0]['state'].values()} == {4}, 'resumed from iteration 2'
    weights = experiment / 'models' / 'net_g_latest.pth'
    test = {
        'name': f'{options["name"]}_test', 'model_type': 'HATModel', 'scale': SCALE, 'num_gpu': 0,
        'datasets': {'test_1': {**raster_dataset(Path(options['datasets']['train']['dataroot_gt']).parent, 'test',
                                                 options['datasets']['train']['bands'])}},
        'network_g': options['network_g'],
        'path': {'pretrain_network_g': str(weights), 'param_key_g': 'params_ema', 'strict_load_g': True},
        'val': {'pbar': False, 'compare_bicubic': True, 'save_img': True},
    }
    evaluation.main(['-opt', str(write_yaml(tmp_path / 'test.yml', test)), '--root', str(tmp_path)])
    result = json.loads((tmp_path / 'results' / test['name'] / 'scenes_test.json').read_text())
    return weights, result


def check_result(result: dict, bands: int) -> None:
    average = result['average']
    assert 'SAM in degrees' in result['protocol']['text'] and 'ERGAS' in result['protocol']['text']
    assert result['protocol']['channel'] == 'bands'
    for metric in ('psnr', 'ssim', 'sam', 'ergas', 'bicubic_psnr', 'bicubic_sam'):
        assert np.isfinite(average[metric]), metric
    band_psnrs = [average[f'psnr_band{band}'] for band in range(1, bands + 1)]
    assert average['psnr'] == pytest.approx(np.mean(band_psnrs))
    assert 0 < average['sam'] < 90 and average['ergas'] > 0


def manual_contract_output(weights: Path, scene: Path, contract: Radiometry) -> np.ndarray:
    """The network on the whole scene, mapped in and out by the contract with plain numpy (no tiling)."""
    network, _ = load_network(weights)
    with rasterio.open(scene) as dataset:
        raw = dataset.read([band for band in contract.bands]).astype(np.float64)
        scale = np.array([dataset.scales[band - 1] for band in contract.bands])[:, None, None]
        offset = np.array([dataset.offsets[band - 1] for band in contract.bands])[:, None, None]
        tags = dataset.tags()
        if 'BOA_QUANTIFICATION_VALUE' in tags:
            scale, offset = 1 / L2A_QUANTIFICATION, L2A_ADD_OFFSET / L2A_QUANTIFICATION
    low, high = contract.low[:, None, None], contract.high[:, None, None]
    unit = ((raw * scale + offset - low) / (high - low)).astype(np.float32)
    with torch.no_grad():
        out = network(torch.from_numpy(unit)[None])[0].double().numpy()
    return np.clip(np.rint(((out * (high - low) + low) - offset) / scale), 0, 65535)


def infer_and_compare(tmp_path: Path, weights: Path, scene: Path, capsys) -> None:
    """segsr-infer with no stretch flag applies the stored contract: the values equal the plain computation."""
    contract = Radiometry.from_dict(torch.load(weights, weights_only=True)['radiometry'])
    infer_main(['--weights', str(weights), '--input', str(scene), '--output', str(tmp_path / 'sr'),
                '--tile', '64', '--overlap', '0', '--device', 'cpu'])
    assert 'warning' not in capsys.readouterr().err
    with rasterio.open(tmp_path / 'sr' / scene.name) as dataset:
        written = dataset.read().astype(np.float64)
        assert dataset.count == len(contract.bands) and dataset.dtypes[0] == 'uint16'
        assert 'contract' in dataset.tags()['SEGSR_STRETCH']
    expected = manual_contract_output(weights, scene, contract)
    written = written[[sorted(contract.bands).index(band) for band in contract.bands]]  # outputs keep source order
    inner = (slice(None), slice(8, -8), slice(8, -8))
    assert np.abs(written[inner] - expected[inner]).max() <= 1


@pytest.mark.filterwarnings('ignore::rasterio.errors.NotGeoreferencedWarning')  # saved windows are plain TIFFs
def test_tiny_hat_on_six_band_landsat_style_rasters(tmp_path, capsys):
    root = scenes(tmp_path / 'data', scaled_scene, bands=6)
    radiometry = {'from_metadata': True, 'range': [0.0, 0.6]}
    network = {'type': 'HAT', 'upscale': SCALE, 'in_chans': 6, **TINY_HAT}
    options = raster_train_options(root, 'hat6', network, [1, 2, 3, 4, 5, 6], radiometry)
    weights, result = train_resume_test(tmp_path, options)
    stored = torch.load(weights, weights_only=True)
    assert stored['radiometry'] == Radiometry.from_options(radiometry, [1, 2, 3, 4, 5, 6]).to_dict()
    check_result(result, bands=6)
    saved = sorted((tmp_path / 'results' / 'hat6_test' / 'visualization' / 'scenes_test').glob('*.tif'))
    assert len(saved) == result['num_images']
    with rasterio.open(saved[0]) as dataset:
        assert dataset.count == 6 and dataset.dtypes[0] == 'float32'
        assert 0.0 < float(np.median(dataset.read())) < 0.6, 'saved as physical reflectance'
    scene = scaled_scene(tmp_path / 'next_scene.tif', bands=6, size=40, seed=9)
    infer_and_compare(tmp_path, weights, scene, capsys)


def test_tiny_segsr_with_rgb_bands_on_four_band_l2a_rasters(tmp_path, clip_file, capsys):
    root = tmp_path / 'data'
    (root / 'hr').mkdir(parents=True)
    l2a_scene(root / 'hr' / 'a.tif', bands=4, size=96, seed=0, nodata_corner=24)
    l2a_scene(root / 'hr' / 'b.tif', bands=4, size=96, seed=5)
    make_raster_splits(str(root / 'hr'), root / 'splits', SplitPlan(32, 16, 16, (0.5, 0.25, 0.25), 0, SCALE))
    radiometry = {'from_metadata': True, 'range': [0.0, 0.6]}
    network = {'type': 'SEGSR', 'upscale': SCALE, 'backbone': {'type': 'HAT', **TINY_HAT, 'in_chans': 4},
               'sfem': {'model': TINY_CLIP_MODEL, 'pretrained': str(clip_file), 'rgb_bands': [3, 2, 1],
                        'display_range': [0.0, 0.5]},
               'slm': {'num_heads': 4}, 'lmm': {'hidden': 8}}
    options = raster_train_options(root, 'segsr4', network, [4, 3, 2, 1], radiometry)
    options['model_type'] = 'SEGSRModel'
    weights, result = train_resume_test(tmp_path, options)
    stored = torch.load(weights, weights_only=True)
    assert stored['radiometry']['bands'] == [4, 3, 2, 1]
    assert stored['network_g']['sfem']['display_range'] == [0.0, 0.5], 'the display mapping travels with it'
    check_result(result, bands=4)
    scene = l2a_scene(tmp_path / 'next_scene.tif', bands=4, size=40, seed=9)
    infer_and_compare(tmp_path, weights, scene, capsys)


def test_pixels_without_data_add_no_loss_and_no_gradient():
    from types import SimpleNamespace

    from basicsr.losses.basic_loss import L1Loss

    from segsr.models.sr_model import SegSRModel

    gt = torch.rand(1, 4, 8, 8)
    mask = torch.ones(1, 1, 8, 8)
    mask[..., :3, :] = 0
    model = SimpleNamespace(cri_pix=L1Loss(), cri_perceptual=None, gt=gt, mask=mask)
    output = (gt + 0.1).requires_grad_()
    loss = SegSRModel.compute_losses(model, output)['l_pix']
    loss.backward()
    assert (output.grad[..., :3, :] == 0).all() and (output.grad[..., 3:, :] != 0).all()
    spoiled = output.detach().clone()
    spoiled[..., :3, :] = 1e6
    assert SegSRModel.compute_losses(model, spoiled)['l_pix'] == pytest.approx(loss.detach().item())
