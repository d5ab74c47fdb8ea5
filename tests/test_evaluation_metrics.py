"""test.py with the consistency, reference, uncertainty and CLIP metrics in ``val.metrics``: every one reaches
the tables, the JSON and the CSV; enforcing consistency makes the degraded output give back the LR."""

import csv
import json

import pytest
import torch
from conftest import TINY_EDSR, eval_options, write_yaml

from segsr import evaluation
from segsr.clip.tiny import TINY_CLIP_MODEL


def new_metrics(clip_file) -> dict:
    clip = {'model': TINY_CLIP_MODEL, 'weights': str(clip_file)}
    return {
        'psnr': {'type': 'calculate_psnr', 'crop_border': 4, 'test_y_channel': True},
        'lr_psnr': {'type': 'calculate_lr_psnr'},
        'lr_mae': {'type': 'calculate_lr_mae'},
        'lr_sam': {'type': 'calculate_lr_sam'},
        'cpsnr': {'type': 'calculate_cpsnr', 'crop_border': 4},
        'improvement': {'type': 'calculate_improvement', 'crop_border': 4},
        'hallucination': {'type': 'calculate_hallucination', 'crop_border': 4},
        'omission': {'type': 'calculate_omission', 'crop_border': 4},
        'spread_spearman': {'type': 'calculate_spread_error_spearman', 'crop_border': 4},
        'clip_similarity': {'type': 'calculate_clip_similarity', **clip},
        'clip_accuracy': {'type': 'calculate_clip_zero_shot', **clip},
        'clip_accuracy_hr': {'type': 'calculate_clip_zero_shot', 'classify': 'reference', **clip},
    }


@pytest.fixture(scope='module')
def weights(tmp_path_factory):
    torch.manual_seed(0)
    from basicsr.archs import build_network

    path = tmp_path_factory.mktemp('weights') / 'edsr.pth'
    torch.save({'params_ema': build_network(dict(TINY_EDSR)).state_dict()}, path)
    return path


def run(demo_data, tmp_path, weights, metrics: dict, **val) -> dict:
    options = eval_options(demo_data, 'fidelity', weights)
    options['val'] |= {'metrics': metrics, 'save_img': False, **val}
    tmp_path.mkdir(exist_ok=True)
    evaluation.main(['-opt', str(write_yaml(tmp_path / 'test.yml', options)), '--root', str(tmp_path)])
    return json.loads((tmp_path / 'results' / 'fidelity' / 'demo_val.json').read_text())


def test_every_new_metric_reaches_the_json_csv_and_class_table(demo_data, tmp_path, weights, clip_file):
    metrics = new_metrics(clip_file)
    payload = run(demo_data, tmp_path, weights, metrics, self_ensemble=True)
    average, image = payload['average'], payload['images'][0]
    for metric in metrics:
        assert metric in average and metric in image
    assert 'bicubic_lr_psnr' in average and 'bicubic_spread_spearman' not in average
    assert average['bicubic_lr_psnr'] > 30  # bicubic degraded again is close to its own input
    assert 0 < average['cpsnr'] < 100 and 0 < average['lr_mae'] < 255
    assert average['bicubic_improvement'] == 0 and average['bicubic_hallucination'] == 0
    for row in payload['images']:
        shares = row['improvement'] + row['hallucination'] + row['omission']
        assert 0 <= shares <= 1 and -1 <= row['spread_spearman'] <= 1
        assert row['clip_accuracy'] in (0.0, 1.0) and row['clip_accuracy_hr'] in (0.0, 1.0)
    accuracy = sum(row['clip_accuracy'] for row in payload['images']) / len(payload['images'])
    assert average['clip_accuracy'] == pytest.approx(accuracy)
    assert {row['class'] for row in payload['per_class']} == {'camera', 'coins', 'ihc'}
    assert all('clip_accuracy' in row for row in payload['per_class'])
    with open(tmp_path / 'results' / 'fidelity' / 'demo_val.csv', newline='') as handle:
        header = next(csv.reader(handle))
    assert {'lr_psnr', 'cpsnr', 'hallucination', 'spread_spearman', 'clip_similarity'} <= set(header)


def test_enforced_consistency_gives_back_the_lr_up_to_8_bit_rounding(demo_data, tmp_path, weights):
    metrics = {'lr_psnr': {'type': 'calculate_lr_psnr'}, 'psnr': {'type': 'calculate_psnr', 'crop_border': 4}}
    plain = run(demo_data, tmp_path / 'plain', weights, metrics)['average']
    enforced = run(demo_data, tmp_path / 'enforced', weights, metrics, enforce_consistency=True)
    assert enforced['average']['lr_psnr'] > 50 > plain['lr_psnr']
    assert 'LR consistency enforced' in enforced['protocol']['text']


def test_spread_metric_without_self_ensemble_is_one_line(demo_data, tmp_path, weights):
    metrics = {'spread': {'type': 'calculate_spread_error_spearman'}}
    with pytest.raises(SystemExit, match='error: val.metrics.spread .* set val.self_ensemble: true'):
        run(demo_data, tmp_path, weights, metrics)
