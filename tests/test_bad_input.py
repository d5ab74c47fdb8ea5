"""Every problem a user can fix ends the run with one line that names it and the fix, and changes nothing on disk.

The harness (:func:`expect_one_line_error`, :func:`expect_cli_error`, :func:`tree_digest`) checks, for every
case: a non-zero exit, no traceback, the key words of the problem in the last line, and the experiments
(or results) folder byte-identical before and after. Option cases run in-process (fast); a few run the real
scripts as subprocesses.
"""

import hashlib
import json
import os
import pathlib
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from conftest import ROOT, eval_options, train_options, write_yaml

from segsr import evaluation
from segsr.training import main as train_main
from segsr.utils.files import remove_stale_temp_files, temporary_path
from segsr.utils.loss_log import read_loss_log

# --- harness -----------------------------------------------------------------------------------------


def tree_digest(folder: Path) -> str:
    """SHA-256 over every path under ``folder`` and every file's bytes: equal digests, identical trees."""
    digest = hashlib.sha256()
    if folder.exists():
        for path in sorted(folder.rglob('*')):
            digest.update(str(path.relative_to(folder)).encode() + b'\0')
            if path.is_file():
                digest.update(path.read_bytes())
    return digest.hexdigest()


def expect_one_line_error(main, argv: list[str], watched: Path, keywords: tuple[str, ...], capsys=None) -> str:
    """Call a CLI entry point in-process; it must exit with one ``error:`` line naming ``keywords`` and leave
    ``watched`` as it was. Returns the line."""
    before = tree_digest(watched)
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    code = exit_info.value.code
    assert code not in (0, None), 'a failed start must exit non-zero'
    message = str(code)
    assert message.startswith('error: ') and '\n' not in message, message
    if capsys is not None:
        captured = capsys.readouterr()
        assert 'Traceback' not in captured.out + captured.err
    for word in keywords:
        assert word in message, f'{word!r} not in {message!r}'
    assert tree_digest(watched) == before, f'{watched} changed'
    return message


def expect_cli_error(script: str, argv: list[str], watched: Path, keywords: tuple[str, ...]) -> str:
    """Run ``segsr/<script>`` as a program, with the same checks as :func:`expect_one_line_error`."""
    before = tree_digest(watched)
    result = subprocess.run([sys.executable, str(ROOT / 'segsr' / script), *argv], capture_output=True, text=True,
                            env={**os.environ, 'OMP_NUM_THREADS': '1'}, timeout=240)
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert 'Traceback' not in output, output
    last = output.strip().splitlines()[-1]
    for word in keywords:
        assert word in last, f'{word!r} not in the last line {last!r}'
    assert tree_digest(watched) == before, f'{watched} changed'
    return last


def marker_payload(marker: Path) -> str:
    """YAML that, under a full loader, would create ``marker``."""
    return f'!!python/object/apply:pathlib.Path.touch [!!python/object/apply:pathlib.Path ["{marker}"]]'


# --- option values: one case each, all in-process ----------------------------------------------------


def _set(path: str, value):
    def mutate(options):
        *parents, leaf = path.split('.')
        node = options
        for key in parents:
            node = node[key]
        node[leaf] = value
    return mutate


# (id, change to the options, key words of the one line)
BAD_TRAIN_OPTIONS = [
    ('total_iter_0', _set('train.total_iter', 0), ('train.total_iter', 'at least 1')),
    ('total_iter_negative', _set('train.total_iter', -5), ('train.total_iter', 'at least 1', '-5')),
    ('print_freq_0', _set('logger.print_freq', 0), ('logger.print_freq', 'at least 1')),
    ('save_freq_0', _set('logger.save_checkpoint_freq', 0), ('logger.save_checkpoint_freq', 'at least 1')),
    ('val_freq_0', _set('val.val_freq', 0), ('val.val_freq', 'at least 1')),
    ('batch_0', _set('datasets.train.batch_size_per_gpu', 0), ('batch_size_per_gpu', 'at least 1')),
    ('val_batch_negative', _set('datasets.val.batch_size_per_gpu', -1), ('datasets.val.batch_size_per_gpu',)),
    ('workers_negative', _set('datasets.train.num_worker_per_gpu', -1), ('num_worker_per_gpu', 'at least 0')),
    ('gt_size_0', _set('datasets.train.gt_size', 0), ('gt_size', 'at least 1')),
    ('enlarge_0', _set('datasets.train.dataset_enlarge_ratio', 0), ('dataset_enlarge_ratio',)),
    ('lr_0', _set('train.optim_g.lr', 0), ('train.optim_g.lr', 'greater than 0')),
    ('lr_negative', _set('train.optim_g.lr', -1e-4), ('train.optim_g.lr', 'greater than 0')),
    ('lr_string', _set('train.optim_g.lr', 'fast'), ('train.optim_g.lr', 'expected a number')),
    ('max_nonfinite_0', _set('train.max_nonfinite_steps', 0), ('max_nonfinite_steps',)),
    ('num_gpu_without_gpu', _set('num_gpu', 1), ('num_gpu: 1', 'set num_gpu: 0 to run on the CPU')),
    ('num_gpu_negative', _set('num_gpu', -1), ('num_gpu', 'number of GPUs')),
    ('num_gpu_word', _set('num_gpu', 'two'), ('num_gpu', 'auto')),
    ('name_absolute', _set('name', '/tmp/elsewhere'), ('name', 'plain folder name')),
    ('name_parent', _set('name', '..'), ('name', 'plain folder name')),
    ('name_nested', _set('name', 'a/b'), ('name', 'plain folder name')),
    ('name_empty', _set('name', ''), ('name', 'plain folder name')),
    ('network_scale', _set('network_g.upscale', 2), ('network_g.upscale', 'scale: 4')),
    ('dataset_scale', _set('datasets.train.scale', 2), ('datasets.train.scale', 'scale: 4')),
    ('scale_0', _set('scale', 0), ('scale', 'at least 1')),
]


@pytest.mark.parametrize('mutate, keywords', [case[1:] for case in BAD_TRAIN_OPTIONS],
                         ids=[case[0] for case in BAD_TRAIN_OPTIONS])
def test_bad_training_option_value(demo_data, tmp_path, earlier_run, capsys, mutate, keywords):
    options = train_options(demo_data, 'bad')
    mutate(options)
    opt_file = write_yaml(tmp_path / 'o.yml', options)
    expect_one_line_error(train_main, ['-opt', str(opt_file), '--root', str(tmp_path)], earlier_run, keywords, capsys)
    assert not Path('/tmp/elsewhere').exists()


BAD_FORCE_YML = [
    ('negative_total_iter', 'train:total_iter=-5', ('train.total_iter', 'at least 1', '-5')),
    ('no_equals', 'train:total_iter', ('--force_yml', 'no "="')),
    ('unknown_section', 'nosuch:key=1', ('--force_yml', 'section "nosuch"')),
    ('bad_yaml', 'train:total_iter=[1, 2', ('--force_yml', 'not valid YAML')),
    ('list_for_int', 'train:total_iter=[1, 2]', ('train.total_iter', 'expected an integer')),
]


@pytest.mark.parametrize('override, keywords', [case[1:] for case in BAD_FORCE_YML],
                         ids=[case[0] for case in BAD_FORCE_YML])
def test_bad_force_yml(demo_data, tmp_path, earlier_run, capsys, override, keywords):
    opt_file = write_yaml(tmp_path / 'o.yml', train_options(demo_data, 'bad'))
    expect_one_line_error(train_main, ['-opt', str(opt_file), '--root', str(tmp_path), '--force_yml', override],
                          earlier_run, keywords, capsys)


@pytest.mark.parametrize('main', [train_main, evaluation.main], ids=['train', 'test'])
def test_python_tag_in_option_file_is_refused_with_its_line(demo_data, tmp_path, capsys, main):
    marker = tmp_path / 'payload_ran'
    options = train_options(demo_data, 'bad') if main is train_main else eval_options(demo_data, 'bad', tmp_path)
    text = write_yaml(tmp_path / 'o.yml', options).read_text()
    opt_file = tmp_path / 'o.yml'
    opt_file.write_text(text + f'manual_seed: {marker_payload(marker)}\n')
    line = len(text.splitlines()) + 1
    expect_one_line_error(main, ['-opt', str(opt_file), '--root', str(tmp_path)], tmp_path / 'experiments',
                          (str(opt_file), f'line {line}', 'python/object/apply', 'not allowed'), capsys)
    assert not marker.exists()


@pytest.mark.parametrize('main', [train_main, evaluation.main], ids=['train', 'test'])
def test_python_tag_in_force_yml_is_refused(demo_data, tmp_path, capsys, main):
    marker = tmp_path / 'payload_ran'
    options = train_options(demo_data, 'bad') if main is train_main else eval_options(demo_data, 'bad', tmp_path)
    opt_file = write_yaml(tmp_path / 'o.yml', options)
    expect_one_line_error(main, ['-opt', str(opt_file), '--root', str(tmp_path), '--force_yml',
                                 f'manual_seed={marker_payload(marker)}'],
                          tmp_path / 'results', ('--force_yml', 'python/object/apply', 'not allowed'), capsys)
    assert not marker.exists()


@pytest.mark.parametrize('mutate, keywords', [
    (_set('name', '../outside'), ('name', 'plain folder name')),
    (_set('num_gpu', 2), ('num_gpu: 2', 'set num_gpu: 0')),
    (_set('network_g.upscale', 3), ('network_g.upscale', 'scale: 4')),
    (_set('datasets.test_1.batch_size_per_gpu', 0), ('batch_size_per_gpu', 'at least 1')),
], ids=['name_outside', 'num_gpu', 'network_scale', 'batch_0'])
def test_bad_test_option_value(demo_data, tmp_path, capsys, mutate, keywords):
    options = eval_options(demo_data, 'bad', tmp_path / 'weights.pth')
    mutate(options)
    opt_file = write_yaml(tmp_path / 't.yml', options)
    expect_one_line_error(evaluation.main, ['-opt', str(opt_file), '--root', str(tmp_path)], tmp_path, keywords,
                          capsys)


def test_option_file_that_is_a_folder_or_not_utf8(tmp_path, capsys):
    folder = tmp_path / 'options.yml'
    folder.mkdir()
    expect_one_line_error(train_main, ['-opt', str(folder)], tmp_path, ('is a folder',), capsys)
    latin = tmp_path / 'latin.yml'
    latin.write_bytes('name: caf\xe9\n'.encode('latin-1'))
    expect_one_line_error(evaluation.main, ['-opt', str(latin)], tmp_path, ('latin.yml', 'not UTF-8'), capsys)


def test_missing_option_file(tmp_path, capsys):
    expect_one_line_error(train_main, ['-opt', str(tmp_path / 'nope.yml')], tmp_path,
                          ('nope.yml does not exist', '-opt'), capsys)


def test_yaml_syntax_error_names_line(tmp_path, capsys):
    opt_file = tmp_path / 'broken.yml'
    opt_file.write_text('name: x\ndatasets:\n  train: [unclosed\n')
    expect_one_line_error(train_main, ['-opt', str(opt_file)], tmp_path, ('broken.yml is not valid YAML at line',),
                          capsys)


def test_force_yml_values_are_yaml(demo_data, tmp_path):
    from segsr.options import apply_overrides

    options = train_options(demo_data, 'x')
    apply_overrides(options, ['train:warmup_iter=-1', 'train:scheduler:milestones=[1, 2]', 'manual_seed=null',
                              'train:optim_g:lr=1e-4', 'val:suffix=None', 'train:optim_g:betas=[0.9, 0.99]'])
    assert options['train']['warmup_iter'] == -1
    assert options['train']['scheduler']['milestones'] == [1, 2]
    assert options['manual_seed'] is None and options['val']['suffix'] is None
    assert options['train']['optim_g']['lr'] == pytest.approx(1e-4)


def test_option_file_keeps_order_and_reads_exponent_floats(tmp_path):
    from segsr.options.safe_yaml import load_option_file

    opt_file = tmp_path / 'o.yml'
    opt_file.write_text('name: x\nzeta: 1\nalpha: 2\nlr: 2e-4\nhalf: !!float 5e3\nword: 1e\n')
    options = load_option_file(opt_file)
    assert list(options) == ['name', 'zeta', 'alpha', 'lr', 'half', 'word']
    assert options['lr'] == pytest.approx(2e-4) and options['half'] == 5000.0 and options['word'] == '1e'


# --- data and checkpoint problems --------------------------------------------------------------------


@pytest.mark.parametrize('section, registry_member', [('network', 'HAT'), ('dataset', 'RSPairedImageDataset')])
def test_unknown_type_lists_registered(demo_data, tmp_path, earlier_run, section, registry_member):
    options = train_options(demo_data, 'bad')
    if section == 'network':
        options['network_g']['type'] = 'HATT'
    else:
        options['datasets']['train']['type'] = 'PairedDataset'
    expect_one_line_error(train_main, ['-opt', str(write_yaml(tmp_path / 'o.yml', options)), '--root',
                                       str(tmp_path)], earlier_run, ('unknown', registry_member))


def test_training_dataset_sections_are_train_and_val(demo_data, tmp_path):
    options = train_options(demo_data, 'sections')
    options['datasets']['test_1'] = options['datasets'].pop('val')
    del options['datasets']['train']
    message = expect_one_line_error(train_main, ['-opt', str(write_yaml(tmp_path / 'o.yml', options)), '--root',
                                                 str(tmp_path)], tmp_path, ('datasets.train: missing; add it',))
    assert 'datasets.test_1: unknown key; known keys: train, val, val_<n>' in message
    assert not (tmp_path / 'experiments').exists()


def test_missing_dataroot_says_how_to_build_demo(tmp_path):
    options = train_options(tmp_path / 'datasets' / 'demo', 'missing')
    expect_one_line_error(train_main, ['-opt', str(write_yaml(tmp_path / 'o.yml', options)), '--root',
                                       str(tmp_path)], tmp_path / 'experiments',
                          ('datasets.train.dataroot_gt', 'python scripts/make_demo_data.py'))


def test_empty_dataset(demo_data, tmp_path, earlier_run):
    empty = tmp_path / 'empty'
    (empty / 'HR').mkdir(parents=True)
    (empty / 'LR').mkdir()
    options = train_options(demo_data, 'bad')
    options['datasets']['train'].update(dataroot_gt=str(empty / 'HR'), dataroot_lq=str(empty / 'LR'),
                                        meta_info_file=None)
    expect_one_line_error(train_main, ['-opt', str(write_yaml(tmp_path / 'o.yml', options)), '--root',
                                       str(tmp_path)], earlier_run, ('no images found', str(empty / 'HR')))


def test_lr_hr_size_mismatch_names_file(demo_data, tmp_path):
    data = tmp_path / 'data'
    shutil.copytree(demo_data, data)
    options = train_options(data, 'mismatch')
    options['datasets']['val']['dataroot_lq'] = str(data / 'LR_x2' / 'val')
    options['train']['total_iter'] = 1
    options['val']['val_freq'] = 1
    with pytest.raises(SystemExit) as exit_info:  # found at the first validation: the run has started
        train_main(['-opt', str(write_yaml(tmp_path / 'o.yml', options)), '--root', str(tmp_path)])
    message = str(exit_info.value.code)
    assert message.startswith('error: ') and '\n' not in message
    assert 'LR_x2' in message and 'scale' in message


def test_corrupt_file_in_the_validation_set_stops_train_py(demo_data, tmp_path, earlier_run):
    data = tmp_path / 'data'
    shutil.copytree(demo_data, data)
    bad = data / 'HR' / 'val' / 'coins_01.png'
    bad.write_bytes(b'not an image')
    opt_file = write_yaml(tmp_path / 'train.yml', train_options(data, 'bad'))
    expect_cli_error('train.py', ['-opt', str(opt_file), '--root', str(tmp_path)], earlier_run,
                     ('error: datasets.val: ', f'{bad} is not an image'))


def test_missing_file_listed_by_meta_info_stops_test_py(demo_data, tmp_path, capsys):
    data = tmp_path / 'data'
    shutil.copytree(demo_data, data)
    missing = data / 'LR_x4' / 'val' / 'camera_00.png'
    missing.unlink()
    options = eval_options(data, 'missing', tmp_path / 'weights.pth')
    options['datasets']['test_1']['meta_info_file'] = str(data / 'meta' / 'val.txt')
    expect_one_line_error(evaluation.main, ['-opt', str(write_yaml(tmp_path / 't.yml', options)), '--root',
                                            str(tmp_path)], tmp_path / 'results',
                          ('datasets.test_1: ', f'{missing} does not exist'), capsys)
    assert not (tmp_path / 'results').exists()


def test_checkpoint_keys_that_do_not_fit(demo_data, tmp_path):
    weights = tmp_path / 'other.pth'
    torch.save({'params_ema': {'stray.bias': torch.zeros(1)}}, weights)
    test_file = write_yaml(tmp_path / 't.yml', eval_options(demo_data, 'badckpt', weights))
    message = expect_one_line_error(evaluation.main, ['-opt', str(test_file), '--root', str(tmp_path)],
                                    tmp_path / 'experiments', ('does not fit the network',))
    assert 'missing' in message and 'unexpected 1 keys: stray.bias' in message


def test_corrupt_checkpoint(demo_data, tmp_path):
    weights = tmp_path / 'truncated.pth'
    torch.save({'params': {'w': torch.zeros(1000)}}, weights)
    weights.write_bytes(weights.read_bytes()[:200])
    test_file = write_yaml(tmp_path / 't.yml', eval_options(demo_data, 'corrupt', weights))
    expect_one_line_error(evaluation.main, ['-opt', str(test_file), '--root', str(tmp_path)],
                          tmp_path / 'experiments', ('truncated.pth cannot be read',))


class Payload:
    """Unpickling this (with a full unpickler) creates the file ``marker``."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return pathlib.Path.touch, (pathlib.Path(self.marker),)


@pytest.fixture
def pickled_payload(tmp_path) -> tuple[Path, Path]:
    marker = tmp_path / 'unpickled'
    path = tmp_path / 'payload.pth'
    torch.save({'params': Payload(marker), 'params_ema': Payload(marker), 'iter': 2}, path)
    return path, marker


def test_weights_only_test_py_pretrained(demo_data, tmp_path, pickled_payload):
    path, marker = pickled_payload
    test_file = write_yaml(tmp_path / 't.yml', eval_options(demo_data, 'payload', path))
    expect_one_line_error(evaluation.main, ['-opt', str(test_file), '--root', str(tmp_path)],
                          tmp_path / 'experiments', ('payload.pth cannot be read',))
    assert not marker.exists()


def test_weights_only_train_resume_state(demo_data, tmp_path, earlier_run, pickled_payload):
    path, marker = pickled_payload
    options = train_options(demo_data, 'bad')
    options['path']['resume_state'] = str(path)
    expect_one_line_error(train_main, ['-opt', str(write_yaml(tmp_path / 'o.yml', options)), '--root',
                                       str(tmp_path)], earlier_run, ('payload.pth cannot be read',))
    assert not marker.exists()


def test_weights_only_auto_resume_skips_the_state(demo_data, tmp_path, pickled_payload, caplog):
    path, marker = pickled_payload
    states = tmp_path / 'experiments' / 'skipped' / 'training_states'
    states.mkdir(parents=True)
    shutil.copy(path, states / '7.state')
    opt_file = write_yaml(tmp_path / 'o.yml', train_options(demo_data, 'skipped', total_iter=1))
    train_main(['-opt', str(opt_file), '--root', str(tmp_path), '--auto_resume'])
    assert 'Skipping training state 7.state' in caplog.text and not marker.exists()


def test_weights_only_infer_and_backbone_and_clip(pickled_payload):
    from segsr.archs.segsr_arch import SEGSR
    from segsr.clip.loader import read_checkpoint
    from segsr.utils.errors import SegSRError
    from segsr.weights.network import load_network

    path, marker = pickled_payload
    for load in (load_network, lambda p: SEGSR.load_backbone_checkpoint(None, p), read_checkpoint):
        with pytest.raises(SegSRError):
            load(path)
    assert not marker.exists()


# --- a few as real programs --------------------------------------------------------------------------


def test_cli_train_py_tag(demo_data, tmp_path, earlier_run):
    marker = tmp_path / 'payload_ran'
    opt_file = write_yaml(tmp_path / 'o.yml', train_options(demo_data, 'bad'))
    opt_file.write_text(opt_file.read_text() + f'manual_seed: {marker_payload(marker)}\n')
    expect_cli_error('train.py', ['-opt', str(opt_file), '--root', str(tmp_path)], earlier_run,
                     ('python/object/apply', 'not allowed'))
    assert not marker.exists()


def test_cli_test_py_force_yml_tag(demo_data, tmp_path):
    marker = tmp_path / 'payload_ran'
    opt_file = write_yaml(tmp_path / 't.yml', eval_options(demo_data, 'bad', tmp_path / 'w.pth'))
    expect_cli_error('test.py', ['-opt', str(opt_file), '--root', str(tmp_path), '--force_yml',
                                 f'name={marker_payload(marker)}'], tmp_path / 'results',
                     ('--force_yml', 'not allowed'))
    assert not marker.exists()


# --- runs are never lost, moved or mixed --------------------------------------------------------------


def test_failed_start_does_not_archive_the_trained_run(demo_data, tmp_path, caplog):
    opt_file = write_yaml(tmp_path / 'o.yml', train_options(demo_data, 'kept', total_iter=2))
    train_main(['-opt', str(opt_file), '--root', str(tmp_path)])
    experiments = tmp_path / 'experiments'
    corrupt = tmp_path / 'corrupt.pth'
    corrupt.write_bytes(b'not a checkpoint')
    options = train_options(demo_data, 'kept', total_iter=2)
    options['path']['pretrain_network_g'] = str(corrupt)  # fails when the network is built: options were fine
    expect_one_line_error(train_main, ['-opt', str(write_yaml(tmp_path / 'b.yml', options)), '--root',
                                       str(tmp_path)], experiments, ('corrupt.pth cannot be read',))
    assert not list(experiments.glob('kept_archived_*'))
    train_main(['-opt', str(opt_file), '--root', str(tmp_path), '--auto_resume', '--force_yml',
                'train:total_iter=3', 'logger:save_checkpoint_freq=3'])
    assert 'Resuming training from epoch 0, iteration 2' in caplog.text
    assert [record['iter'] for record in read_loss_log(experiments / 'kept' / 'losses.jsonl')] == [1, 2, 3]


def test_auto_resume_without_state_names_archived_runs(demo_data, tmp_path, caplog):
    (tmp_path / 'experiments' / 'named_archived_20260101_000000' / 'training_states').mkdir(parents=True)
    opt_file = write_yaml(tmp_path / 'o.yml', train_options(demo_data, 'named', total_iter=1))
    train_main(['-opt', str(opt_file), '--root', str(tmp_path), '--auto_resume'])
    assert 'archived runs of this name: named_archived_20260101_000000' in caplog.text


def _wait_for(path: Path, process: subprocess.Popen, seconds: float = 180) -> None:
    deadline = time.monotonic() + seconds
    while not path.exists():
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, f'{path} did not appear'
        time.sleep(0.2)


def test_second_start_on_a_running_experiment_is_refused(demo_data, tmp_path):
    opt_file = write_yaml(tmp_path / 'o.yml', train_options(demo_data, 'locked', total_iter=4))
    first = subprocess.Popen([sys.executable, str(ROOT / 'tests' / 'training_runner.py'), '--block-after-state',
                              '2', '-opt', str(opt_file), '--root', str(tmp_path), '--force_yml',
                              'logger:save_checkpoint_freq=2'], env={**os.environ, 'OMP_NUM_THREADS': '1'},
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    experiment = tmp_path / 'experiments' / 'locked'
    try:
        _wait_for(experiment / 'training_states' / '2.state', first)
        for extra in ([], ['--auto_resume']):
            expect_one_line_error(train_main, ['-opt', str(opt_file), '--root', str(tmp_path), *extra],
                                  tmp_path / 'experiments', ('in use by another run', f'PID {first.pid}'))
    finally:
        first.kill()
        first.wait()
    train_main(['-opt', str(opt_file), '--root', str(tmp_path), '--auto_resume'])  # the kill left no stale lock
    assert [record['iter'] for record in read_loss_log(experiment / 'losses.jsonl')] == [1, 2, 3, 4]


def _dead_pid() -> int:
    process = subprocess.Popen([sys.executable, '-c', ''])
    process.wait()
    return process.pid


def test_stale_temp_files_of_dead_runs_are_removed_on_resume(demo_data, tmp_path):
    opt_file = write_yaml(tmp_path / 'o.yml', train_options(demo_data, 'stale', total_iter=1))
    train_main(['-opt', str(opt_file), '--root', str(tmp_path)])
    experiment = tmp_path / 'experiments' / 'stale'
    dead = _dead_pid()
    stale = [temporary_path(experiment / 'models' / 'net_g_5.pth', dead),
             temporary_path(experiment / 'losses.jsonl', dead),
             temporary_path(experiment / 'visualization' / 'img.png', dead)]
    kept = [temporary_path(experiment / 'models' / 'net_g_6.pth', os.getpid()), experiment / 'notes.tmp',
            experiment / f'notes.{dead}.tmp', temporary_path(experiment / 'img.png', os.getpid())]
    for path in stale + kept:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b'partial')
    train_main(['-opt', str(opt_file), '--root', str(tmp_path), '--auto_resume', '--force_yml', 'train:total_iter=2'])
    assert not any(path.exists() for path in stale)
    assert all(path.exists() for path in kept), 'live writers and a user\'s own files are left alone'
    assert remove_stale_temp_files(tmp_path / 'nowhere') == []


def fill(disk: Path, leave: int) -> None:
    """Fill ``disk`` until writes fail, then free ``leave`` bytes."""
    filler = disk / 'filler'
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT)
    try:
        while True:
            os.write(fd, b'\0' * 4096)
    except OSError:
        pass
    finally:
        os.close(fd)
    os.truncate(filler, max(filler.stat().st_size - leave, 0))


def test_disk_full_while_saving_names_the_file_and_keeps_earlier_checkpoints(demo_data, tmp_path, small_disk):
    opt_file = write_yaml(tmp_path / 'o.yml', train_options(demo_data, 'full', total_iter=2))
    root = ['--root', str(small_disk)]
    train_main(['-opt', str(opt_file), *root, '--force_yml', 'logger:use_tb_logger=false'])
    experiment = small_disk / 'experiments' / 'full'
    saved = {path: path.read_bytes() for path in [*experiment.glob('models/*'), *experiment.glob('training_states/*')]}
    fill(small_disk, leave=24 * 1024)  # room for the log lines, not for a checkpoint
    with pytest.raises(SystemExit) as exit_info:
        train_main(['-opt', str(opt_file), *root, '--auto_resume', '--force_yml', 'train:total_iter=3',
                    'logger:use_tb_logger=false'])
    message = str(exit_info.value.code)
    assert message.startswith('error: ') and '\n' not in message
    assert 'net_g_3.pth' in message and 'MiB free' in message
    assert f'last complete checkpoint is {experiment / "models" / "net_g_2.pth"}' in message
    assert all(path.read_bytes() == content for path, content in saved.items())
    assert not list(experiment.rglob('*.tmp'))
    assert json.loads((experiment / 'losses.jsonl').read_text().splitlines()[-1])['iter'] == 3
