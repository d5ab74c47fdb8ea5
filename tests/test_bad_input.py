"""Every problem a user can fix ends the run with one line that names it and the fix."""

import shutil

import pytest
import torch
from conftest import eval_options, train_options, write_yaml

from segsr import evaluation
from segsr.training import main as train_main


def run_error(main, argv: list[str]) -> str:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    message = str(exit_info.value.code)
    assert message.startswith('error: ') and '\n' not in message, message
    return message


def test_missing_option_file(tmp_path):
    message = run_error(train_main, ['-opt', str(tmp_path / 'nope.yml')])
    assert 'nope.yml does not exist' in message and '-opt' in message


def test_yaml_syntax_error_names_line(tmp_path):
    opt_file = tmp_path / 'broken.yml'
    opt_file.write_text('name: x\ndatasets:\n  train: [unclosed\n')
    message = run_error(train_main, ['-opt', str(opt_file)])
    assert 'broken.yml is not valid YAML at line' in message


@pytest.mark.parametrize('section, registry_member', [('network', 'HAT'), ('dataset', 'RSPairedImageDataset')])
def test_unknown_type_lists_registered(demo_data, tmp_path, section, registry_member):
    options = train_options(demo_data, 'unknown')
    if section == 'network':
        options['network_g']['type'] = 'HATT'
    else:
        options['datasets']['train']['type'] = 'PairedDataset'
    message = run_error(train_main, ['-opt', str(write_yaml(tmp_path / 'o.yml', options)), '--root', str(tmp_path)])
    assert 'unknown' in message and registry_member in message


def test_training_dataset_sections_are_train_and_val(demo_data, tmp_path):
    options = train_options(demo_data, 'sections')
    options['datasets']['test_1'] = options['datasets'].pop('val')
    del options['datasets']['train']
    message = run_error(train_main, ['-opt', str(write_yaml(tmp_path / 'o.yml', options)), '--root', str(tmp_path)])
    assert 'datasets.train: missing; add it' in message
    assert 'datasets.test_1: unknown key; known keys: train, val, val_<n>' in message
    assert not (tmp_path / 'experiments').exists()


def test_missing_dataroot_says_how_to_build_demo(tmp_path):
    options = train_options(tmp_path / 'datasets' / 'demo', 'missing')
    message = run_error(train_main, ['-opt', str(write_yaml(tmp_path / 'o.yml', options)), '--root', str(tmp_path)])
    assert 'datasets.train.dataroot_gt' in message and 'python scripts/make_demo_data.py' in message


def test_empty_dataset(demo_data, tmp_path):
    empty = tmp_path / 'empty'
    (empty / 'HR').mkdir(parents=True)
    (empty / 'LR').mkdir()
    options = train_options(demo_data, 'empty')
    options['datasets']['train'].update(dataroot_gt=str(empty / 'HR'), dataroot_lq=str(empty / 'LR'),
                                        meta_info_file=None)
    message = run_error(train_main, ['-opt', str(write_yaml(tmp_path / 'o.yml', options)), '--root', str(tmp_path)])
    assert 'no images found' in message and str(empty / 'HR') in message


def test_lr_hr_size_mismatch_names_file(demo_data, tmp_path):
    data = tmp_path / 'data'
    shutil.copytree(demo_data, data)
    options = train_options(data, 'mismatch')
    options['datasets']['val']['dataroot_lq'] = str(data / 'LR_x2' / 'val')
    options['train']['total_iter'] = 1
    options['val']['val_freq'] = 1
    message = run_error(train_main, ['-opt', str(write_yaml(tmp_path / 'o.yml', options)), '--root', str(tmp_path)])
    assert 'LR_x2' in message and 'scale' in message


def test_checkpoint_keys_that_do_not_fit(demo_data, tmp_path):
    weights = tmp_path / 'other.pth'
    torch.save({'params_ema': {'stray.bias': torch.zeros(1)}}, weights)
    test_file = write_yaml(tmp_path / 't.yml', eval_options(demo_data, 'badckpt', weights))
    message = run_error(evaluation.main, ['-opt', str(test_file), '--root', str(tmp_path)])
    assert 'does not fit the network' in message
    assert 'missing' in message and 'unexpected 1 keys: stray.bias' in message


def test_corrupt_checkpoint(demo_data, tmp_path):
    weights = tmp_path / 'truncated.pth'
    torch.save({'params': {'w': torch.zeros(1000)}}, weights)
    weights.write_bytes(weights.read_bytes()[:200])
    test_file = write_yaml(tmp_path / 't.yml', eval_options(demo_data, 'corrupt', weights))
    message = run_error(evaluation.main, ['-opt', str(test_file), '--root', str(tmp_path)])
    assert 'truncated.pth cannot be read' in message
