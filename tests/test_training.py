"""Training and evaluation end to end on the demo data, on CPU."""

import json

import cv2
import pytest
import torch
from basicsr.metrics import calculate_psnr, calculate_ssim
from conftest import eval_options, train_options, write_yaml

from segsr import evaluation
from segsr.radiometry.contract import Radiometry
from segsr.training import main as train_main


@pytest.fixture
def no_cuda(monkeypatch):
    """Make the CUDA entry points that initialise a device raise (torch itself still asks is_available)."""

    def forbidden(*args, **kwargs):
        raise AssertionError('a CPU run called torch.cuda')

    for name in ('current_device', 'set_device', 'empty_cache', 'synchronize', 'init', 'max_memory_allocated',
                 'Stream'):
        monkeypatch.setattr(torch.cuda, name, forbidden)


def test_train_stop_resume_continue_on_cpu(demo_data, tmp_path, no_cuda):
    opt_file = write_yaml(tmp_path / 'train.yml', train_options(demo_data, 'resume_run', total_iter=2))
    train_main(['-opt', str(opt_file), '--root', str(tmp_path)])
    experiment = tmp_path / 'experiments' / 'resume_run'
    assert (experiment / 'training_states' / '2.state').is_file()
    assert (experiment / 'models' / 'net_g_latest.pth').is_file()

    train_main(['-opt', str(opt_file), '--root', str(tmp_path), '--auto_resume', '--force_yml',
                'train:total_iter=4', 'logger:save_checkpoint_freq=2'])
    state = torch.load(experiment / 'training_states' / '4.state', weights_only=True)
    assert state['iter'] == 4
    adam_steps = {int(s['step']) for s in state['optimizers'][0]['state'].values()}
    assert adam_steps == {4}, 'the resumed run must continue the optimiser from iteration 2'
    checkpoint = torch.load(experiment / 'models' / 'net_g_4.pth', weights_only=True)
    assert set(checkpoint) == {'params', 'params_ema', 'network_g', 'radiometry', 'card'}
    assert checkpoint['network_g']['type'] == 'EDSR'
    assert Radiometry.from_dict(checkpoint['radiometry']).is_default, 'an 8-bit run stores the 0..255 default'
    assert not list(experiment.parent.glob('resume_run_archived_*')), 'resuming must not archive the experiment'


def test_auto_resume_uses_experiment_root_not_working_directory(demo_data, tmp_path, monkeypatch):
    opt_file = write_yaml(tmp_path / 'train.yml', train_options(demo_data, 'rooted', total_iter=2))
    train_main(['-opt', str(opt_file), '--root', str(tmp_path / 'a')])
    monkeypatch.chdir(tmp_path)
    train_main(['-opt', str(opt_file), '--root', str(tmp_path / 'a'), '--auto_resume', '--force_yml',
                'train:total_iter=3', 'logger:save_checkpoint_freq=3'])
    assert (tmp_path / 'a' / 'experiments' / 'rooted' / 'training_states' / '3.state').is_file()
    assert not (tmp_path / 'experiments').exists()


def test_test_py_tables_match_basicsr_metrics_on_saved_images(demo_data, tmp_path):
    opt_file = write_yaml(tmp_path / 'train.yml', train_options(demo_data, 'evaluated', total_iter=2))
    train_main(['-opt', str(opt_file), '--root', str(tmp_path)])
    weights = tmp_path / 'experiments' / 'evaluated' / 'models' / 'net_g_latest.pth'
    test_file = write_yaml(tmp_path / 'test.yml', eval_options(demo_data, 'evaluated', weights))
    evaluation.main(['-opt', str(test_file), '--root', str(tmp_path)])

    results = tmp_path / 'results' / 'evaluated'
    payload = json.loads((results / 'demo_val.json').read_text())
    assert payload['protocol'] == {'channel': 'Y', 'crop_border': 4, 'self_ensemble': False,
                                   'enforce_consistency': False, 'text': 'Y channel, 4-pixel border cropped'}
    assert payload['num_images'] == len(payload['images']) == 6
    csv_lines = (results / 'demo_val.csv').read_text().splitlines()
    assert csv_lines[0].split(',')[:4] == ['image', 'class', 'psnr', 'ssim']
    assert csv_lines[-1].startswith('AVERAGE')

    psnrs = []
    for row in payload['images']:
        sr = cv2.imread(str(results / 'visualization' / 'demo_val' / f'{row["image"]}_evaluated.png'))
        gt = cv2.imread(str(demo_data / 'HR' / 'val' / f'{row["image"]}.png'))
        psnr = calculate_psnr(sr, gt, crop_border=4, test_y_channel=True)
        assert row['psnr'] == pytest.approx(psnr, abs=1e-9)
        assert row['ssim'] == pytest.approx(calculate_ssim(sr, gt, crop_border=4, test_y_channel=True), abs=1e-9)
        psnrs.append(psnr)
    assert payload['average']['psnr'] == pytest.approx(sum(psnrs) / len(psnrs), abs=1e-9)
    assert float(csv_lines[-1].split(',')[2]) == pytest.approx(payload['average']['psnr'], abs=1e-9)
    classes = {entry['class']: entry for entry in payload['per_class']}
    assert set(classes) == {'camera', 'coins', 'ihc'} and all(entry['images'] == 2 for entry in classes.values())
