"""LPIPS and DISTS in val.metrics, with randomly initialised backbones saved as torchvision checkpoints.

Random backbones make the numbers meaningless as perceptual scores; the tests check the plumbing:
the local file is what gets loaded, identical images are at distance 0, degraded ones further away.
"""

import json

import cv2
import numpy as np
import pytest
import torch
import torchvision
from basicsr.metrics import calculate_metric
from conftest import TINY_EDSR, eval_options, write_yaml

from segsr import evaluation
from segsr.utils.errors import SegSRError


def save_random_backbone(name: str, path) -> str:
    """A torchvision checkpoint with random conv features; the unused classifier is stored as broadcast zeros."""
    torch.manual_seed(0)
    state = getattr(torchvision.models, name)(weights=None).state_dict()
    state = {k: v if k.startswith('features.') else torch.zeros(()).expand(v.shape) for k, v in state.items()}
    torch.save(state, path)
    return str(path)


@pytest.fixture(scope='module')
def backbones(tmp_path_factory) -> dict[str, str]:
    folder = tmp_path_factory.mktemp('backbones')
    return {'calculate_lpips': save_random_backbone('alexnet', folder / 'alexnet.pth'),
            'calculate_dists': save_random_backbone('vgg16', folder / 'vgg16.pth')}


def images() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:64, 0:64]
    gt = np.stack([128 + 100 * np.sin(x / 5), 128 + 100 * np.cos(y / 7), 128 + 60 * np.sin((x + y) / 9)], -1)
    gt = gt.astype(np.uint8)
    mild = np.clip(gt + rng.normal(0, 8, gt.shape), 0, 255).astype(np.uint8)
    strong = np.clip(gt + rng.normal(0, 40, gt.shape), 0, 255).astype(np.uint8)
    return gt, mild, strong


@pytest.mark.parametrize('metric', ['calculate_lpips', 'calculate_dists'])
def test_identity_is_zero_and_degradation_moves_away(backbones, metric):
    gt, mild, strong = images()
    score = {name: calculate_metric({'img': img, 'img2': gt},
                                    {'type': metric, 'backbone_weights': backbones[metric], 'crop_border': 4})
             for name, img in (('same', gt), ('mild', mild), ('strong', strong))}
    assert abs(score['same']) < 1e-5
    assert score['same'] < score['mild'] < score['strong']


def test_niqe_needs_no_reference_and_scores_noise_worse():
    y, x = np.mgrid[0:192, 0:192]
    clean = np.stack([128 + 100 * np.sin(x / 5), 128 + 100 * np.cos(y / 7), 128 + 60 * np.sin((x + y) / 9)], -1)
    noisy = clean + np.random.default_rng(0).normal(0, 30, clean.shape)
    niqe = {'type': 'calculate_niqe', 'crop_border': 0}
    clean_score, noisy_score = (calculate_metric({'img': np.clip(img, 0, 255).astype(np.uint8)}, niqe)
                                for img in (clean, noisy))
    assert np.isfinite(clean_score) and clean_score < noisy_score


def test_missing_backbone_names_the_file_to_fetch(tmp_path):
    gt, _, _ = images()
    with pytest.raises(SegSRError) as excinfo:
        calculate_metric({'img': gt, 'img2': gt}, {'type': 'calculate_dists', 'backbone_weights': tmp_path / 'v.pth'})
    message = str(excinfo.value)
    assert '\n' not in message and 'https://download.pytorch.org/models/vgg16-397923af.pth' in message
    assert f'backbone weights {tmp_path / "v.pth"} not found' in message


def test_a_file_that_is_not_the_backbone_is_named(tmp_path, backbones):
    gt, _, _ = images()
    with pytest.raises(SegSRError) as excinfo:  # AlexNet weights given where VGG16 is expected
        calculate_metric({'img': gt, 'img2': gt}, {'type': 'calculate_dists',
                                                    'backbone_weights': backbones['calculate_lpips']})
    assert 'is not the torchvision checkpoint vgg16-397923af.pth' in str(excinfo.value)


def test_test_py_reports_lpips_and_dists_per_image(demo_data, tmp_path, backbones):
    torch.manual_seed(0)
    from basicsr.archs import build_network

    weights = tmp_path / 'edsr.pth'
    torch.save({'params_ema': build_network(dict(TINY_EDSR)).state_dict()}, weights)
    options = eval_options(demo_data, 'perceptual', weights)
    options['val']['metrics'] = {
        'psnr': {'type': 'calculate_psnr', 'crop_border': 4, 'test_y_channel': True},
        'lpips': {'type': 'calculate_lpips', 'crop_border': 4, 'backbone_weights': backbones['calculate_lpips'],
                  'better': 'lower'},
        'dists': {'type': 'calculate_dists', 'crop_border': 4, 'backbone_weights': backbones['calculate_dists'],
                  'better': 'lower'},
    }
    evaluation.main(['-opt', str(write_yaml(tmp_path / 'test.yml', options)), '--root', str(tmp_path)])
    payload = json.loads((tmp_path / 'results' / 'perceptual' / 'demo_val.json').read_text())
    for row in payload['images']:
        assert row['lpips'] > 0 and row['dists'] > 0
        assert row['bicubic_lpips'] > 0
    sr = cv2.imread(str(tmp_path / 'results' / 'perceptual' / 'visualization' / 'demo_val' /
                        f'{payload["images"][0]["image"]}_perceptual.png'))
    assert sr is not None


def test_the_local_backbone_file_is_what_the_metrics_use(backbones):
    """segsr loads the file weights-only and hands the tensors to torchmetrics' feature stages."""
    from segsr.metrics.perceptual_metric import dists_network, lpips_network

    for network, path in ((lpips_network('alex', backbones['calculate_lpips']), backbones['calculate_lpips']),
                          (dists_network(backbones['calculate_dists']), backbones['calculate_dists'])):
        saved = torch.load(path, weights_only=True)
        stages = network.net.children() if hasattr(network, 'net') else (
            getattr(network, f'stage{index}') for index in range(1, 6))
        loaded = {f'features.{key}': value for stage in stages for key, value in stage.state_dict().items()}
        features = [key for key in saved if key.startswith('features.')]
        assert features and all(torch.equal(loaded[key], saved[key]) for key in features)
