"""Training that survives: exact resume after SIGKILL, SIGTERM, multi-process equivalence, NaNs, bad states."""

import logging
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from basicsr.losses.basic_loss import L1Loss
from conftest import ROOT, TINY_EDSR, train_options, write_yaml

from segsr.training import main as train_main
from segsr.utils.dist import export_slurm_environment, first_host
from segsr.utils.loss_log import read_loss_log

RUNNER = ROOT / 'tests' / 'training_runner.py'
ENV = {**os.environ, 'OMP_NUM_THREADS': '1', 'CUDA_VISIBLE_DEVICES': '', 'PYTHONPATH': str(ROOT)}
INITIAL_LOSS_SCALE = 2.0**25  # a few good steps below where this tiny EDSR overflows in fp16
SMALL_SET = [f'{source}_0{i}.png' for source in ('astronaut', 'chelsea', 'coffee') for i in (0, 1)]


def small_options(data: Path, tmp_path: Path, name: str, total_iter: int, **train_set) -> dict:
    """Six training images (three steps of batch 2 per epoch), so a few steps cross epochs."""
    meta = tmp_path / 'meta_small.txt'
    meta.write_text('\n'.join(SMALL_SET) + '\n')
    options = train_options(data, name, total_iter=total_iter)
    options['datasets']['train'].update(meta_info_file=str(meta), **train_set)
    options['val']['val_freq'] = 3
    return options


def start(args: list[str], *hooks: str, processes: int = 1, script: Path = RUNNER) -> subprocess.Popen:
    launcher = [sys.executable]
    if processes > 1:
        launcher += ['-m', 'torch.distributed.run', '--standalone', f'--nproc_per_node={processes}']
        args = [*args, '--launcher', 'pytorch']
    return subprocess.Popen([*launcher, str(script), *hooks, *args], env=ENV,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def finish(process: subprocess.Popen) -> str:
    output, _ = process.communicate(timeout=300)
    assert process.returncode == 0, output[-4000:]
    return output


def weights(path: Path) -> dict:
    return torch.load(path, weights_only=True)


def assert_bitwise_equal(first: dict, second: dict) -> None:
    for key in ('params', 'params_ema'):
        assert first[key].keys() == second[key].keys()
        for name in first[key]:
            assert torch.equal(first[key][name], second[key][name]), f'{key}.{name} differs'


@pytest.mark.slow
@pytest.mark.parametrize('amp', ['off', 'fp16'])
def test_sigkill_then_auto_resume_matches_uninterrupted_run_bitwise(demo_data, tmp_path, amp):
    """With fp16 the loss scale must come back too: it grows after good steps and skips and halves on
    overflow, so a fresh scaler would skip different steps."""
    scale = ('--restless-loss-scale', str(INITIAL_LOSS_SCALE)) if amp == 'fp16' else ()
    network = {**TINY_EDSR, 'type': 'NoisyEDSR'}  # dropout: the torch generator state matters
    uninterrupted = small_options(demo_data, tmp_path, 'straight', total_iter=8, num_worker_per_gpu=0)
    interrupted = small_options(demo_data, tmp_path, 'killed', total_iter=8, num_worker_per_gpu=1)
    for options in (uninterrupted, interrupted):
        options['network_g'] = network
        options['logger']['save_checkpoint_freq'] = 4
        options['train']['amp'] = amp
    straight_file = write_yaml(tmp_path / 'straight.yml', uninterrupted)
    killed_file = write_yaml(tmp_path / 'killed.yml', interrupted)
    straight = start(['-opt', str(straight_file), '--root', str(tmp_path)], *scale)

    killed = start(['-opt', str(killed_file), '--root', str(tmp_path)], '--block-after-state', '4', *scale)
    state = tmp_path / 'experiments' / 'killed' / 'training_states' / '4.state'
    deadline = time.monotonic() + 240
    while not state.exists() and killed.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert state.exists(), killed.communicate()[0][-3000:]
    killed.send_signal(signal.SIGKILL)
    killed.communicate()
    assert killed.returncode == -signal.SIGKILL
    assert not (tmp_path / 'experiments' / 'killed' / 'models' / 'net_g_latest.pth').exists()
    if amp == 'fp16':
        saved = torch.load(state, weights_only=True)['grad_scaler']
        assert saved['scale'] < INITIAL_LOSS_SCALE * 2**4, 'an overflow must have been skipped before the kill'

    output = finish(start(['-opt', str(killed_file), '--root', str(tmp_path), '--auto_resume'], *scale))
    assert 'Resuming training from epoch 1, iteration 4 (2 samples of the epoch already used)' in output
    finish(straight)

    for label in ('8', 'latest'):
        assert_bitwise_equal(weights(tmp_path / 'experiments' / 'straight' / 'models' / f'net_g_{label}.pth'),
                             weights(tmp_path / 'experiments' / 'killed' / 'models' / f'net_g_{label}.pth'))
    straight_losses = read_loss_log(tmp_path / 'experiments' / 'straight' / 'losses.jsonl')
    resumed_losses = read_loss_log(tmp_path / 'experiments' / 'killed' / 'losses.jsonl')
    assert [record['iter'] for record in resumed_losses] == list(range(1, 9))
    assert resumed_losses == straight_losses


def test_sigterm_saves_the_current_iteration_and_resume_continues(demo_data, tmp_path, monkeypatch):
    options = small_options(demo_data, tmp_path, 'terminated', total_iter=50)
    options['logger']['save_checkpoint_freq'] = 50
    opt_file = write_yaml(tmp_path / 'o.yml', options)
    from segsr.models.sr_model import SegSRModel

    optimize = SegSRModel.optimize_parameters

    def optimize_then_terminate(self, current_iter):
        optimize(self, current_iter)
        if current_iter == 3:
            os.kill(os.getpid(), signal.SIGTERM)

    monkeypatch.setattr(SegSRModel, 'optimize_parameters', optimize_then_terminate)
    train_main(['-opt', str(opt_file), '--root', str(tmp_path)])  # returns normally: exit code 0
    experiment = tmp_path / 'experiments' / 'terminated'
    assert [path.name for path in (experiment / 'training_states').glob('*.state')] == ['3.state']
    assert (experiment / 'models' / 'net_g_3.pth').is_file()
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL, 'the handler must be removed after the run'

    monkeypatch.setattr(SegSRModel, 'optimize_parameters', optimize)
    train_main(['-opt', str(opt_file), '--root', str(tmp_path), '--auto_resume',
                '--force_yml', 'train:total_iter=5'])
    assert [record['iter'] for record in read_loss_log(experiment / 'losses.jsonl')] == [1, 2, 3, 4, 5]
    state = torch.load(experiment / 'training_states' / '5.state', weights_only=True)
    assert {int(s['step']) for s in state['optimizers'][0]['state'].values()} == {5}
    assert state['sampler'] == {'epoch_samples': 4} and state['epoch'] == 1


@pytest.mark.slow
def test_two_gloo_processes_match_one_process_with_double_batch(demo_data, tmp_path):
    """The pair runs segsr/train.py itself under torchrun, as a user launches it."""
    runs = {}
    for name, batch, processes, script in (('single', 2, 1, RUNNER), ('pair', 1, 2, ROOT / 'segsr' / 'train.py')):
        options = small_options(demo_data, tmp_path, name, total_iter=4, batch_size_per_gpu=batch)
        options['train']['ema_decay'] = 0
        options['logger']['save_checkpoint_freq'] = 4
        runs[name] = start(['-opt', str(write_yaml(tmp_path / f'{name}.yml', options)), '--root', str(tmp_path)],
                           processes=processes, script=script)
    for process in runs.values():
        finish(process)
    assert (tmp_path / 'experiments' / 'pair' / 'models' / 'net_g_latest.pth').is_file()
    assert 'x 2 processes' in next((tmp_path / 'experiments' / 'pair').glob('train_*.log')).read_text()
    single = weights(tmp_path / 'experiments' / 'single' / 'models' / 'net_g_4.pth')['params']
    pair = weights(tmp_path / 'experiments' / 'pair' / 'models' / 'net_g_4.pth')['params']
    experiments = tmp_path / 'experiments'
    for name in single:
        torch.testing.assert_close(pair[name], single[name], rtol=0, atol=1e-5)
    single_losses = read_loss_log(experiments / 'single' / 'losses.jsonl')
    pair_losses = read_loss_log(experiments / 'pair' / 'losses.jsonl')
    assert [record['l_pix'] for record in pair_losses] == pytest.approx(
        [record['l_pix'] for record in single_losses], abs=1e-6)


@pytest.mark.slow
def test_sigterm_to_one_torchrun_process_stops_every_rank_at_the_same_iteration(demo_data, tmp_path):
    options = small_options(demo_data, tmp_path, 'ddp_stop', total_iter=50, batch_size_per_gpu=1)
    options['logger']['save_checkpoint_freq'] = 50
    opt_file = write_yaml(tmp_path / 'o.yml', options)
    output = finish(start(['-opt', str(opt_file), '--root', str(tmp_path)], '--signal-at-iter', '2',
                          '--signal-rank', '1', processes=2))
    experiment = tmp_path / 'experiments' / 'ddp_stop'
    assert [path.name for path in (experiment / 'training_states').glob('*.state')] == ['2.state']
    state = torch.load(experiment / 'training_states' / '2.state', weights_only=True)
    assert len(state['rng']) == 2, 'every rank keeps its own generator states'
    assert not torch.equal(state['rng'][0]['torch'], state['rng'][1]['torch'])
    assert 'the state of iteration 2 is saved' in output


def test_truncated_state_or_weights_are_skipped_by_auto_resume(demo_data, tmp_path, caplog):
    options = small_options(demo_data, tmp_path, 'truncated', total_iter=6)
    options['logger']['save_checkpoint_freq'] = 2
    opt_file = write_yaml(tmp_path / 'o.yml', options)
    train_main(['-opt', str(opt_file), '--root', str(tmp_path)])
    experiment = tmp_path / 'experiments' / 'truncated'
    for path in (experiment / 'training_states' / '6.state', experiment / 'models' / 'net_g_4.pth'):
        path.write_bytes(path.read_bytes()[:100])

    logging.getLogger('basicsr').addHandler(caplog.handler)
    try:
        train_main(['-opt', str(opt_file), '--root', str(tmp_path), '--auto_resume',
                    '--force_yml', 'train:total_iter=7'])
    finally:
        logging.getLogger('basicsr').removeHandler(caplog.handler)
    skipped = [record.getMessage() for record in caplog.records if 'Skipping training state' in record.getMessage()]
    assert len(skipped) == 2 and '6.state' in skipped[0] and 'net_g_4.pth' in skipped[1]
    assert 'Resuming training from epoch 0, iteration 2' in caplog.text
    assert [record['iter'] for record in read_loss_log(experiment / 'losses.jsonl')] == list(range(1, 8))


def nan_loss_at(monkeypatch, iterations: set[int]) -> None:
    """Make the L1 loss NaN on the given training calls (1-based)."""
    forward, calls = L1Loss.forward, []

    def maybe_nan(self, pred, target, weight=None, **kwargs):
        calls.append(1)
        loss = forward(self, pred, target, weight, **kwargs)
        return loss * float('nan') if len(calls) in iterations else loss

    monkeypatch.setattr(L1Loss, 'forward', maybe_nan)


def test_nan_loss_step_is_skipped_counted_and_logged(demo_data, tmp_path, monkeypatch):
    options = small_options(demo_data, tmp_path, 'one_nan', total_iter=4)
    options['logger']['save_checkpoint_freq'] = 4
    nan_loss_at(monkeypatch, {2})
    train_main(['-opt', str(write_yaml(tmp_path / 'o.yml', options)), '--root', str(tmp_path)])
    experiment = tmp_path / 'experiments' / 'one_nan'
    records = read_loss_log(experiment / 'losses.jsonl')
    assert [(record['iter'], record['skipped'], record['l_pix'] is None) for record in records] == [
        (1, False, False), (2, True, True), (3, False, False), (4, False, False)]
    state = torch.load(experiment / 'training_states' / '4.state', weights_only=True)
    assert {int(s['step']) for s in state['optimizers'][0]['state'].values()} == {3}, 'no optimiser step at NaN'
    assert state['nonfinite_steps'] == 1
    log = next(experiment.glob('train_*.log')).read_text()
    assert 'Iteration 2: non-finite loss (l_pix=nan); step skipped (1 in a row, 1 in total)' in log
    params = weights(experiment / 'models' / 'net_g_4.pth')
    assert all(torch.isfinite(tensor).all() for part in ('params', 'params_ema') for tensor in params[part].values())


def test_nan_losses_in_a_row_stop_and_keep_the_last_good_checkpoint(demo_data, tmp_path, monkeypatch):
    options = small_options(demo_data, tmp_path, 'nan_run', total_iter=20)
    options['logger']['save_checkpoint_freq'] = 2
    options['train']['max_nonfinite_steps'] = 3
    nan_loss_at(monkeypatch, set(range(4, 100)))
    with pytest.raises(SystemExit) as exit_info:
        train_main(['-opt', str(write_yaml(tmp_path / 'o.yml', options)), '--root', str(tmp_path)])
    message = str(exit_info.value.code)
    assert message.startswith('error: training stopped at iteration 6: the loss was NaN or infinite for 3 ')
    assert '\n' not in message
    experiment = tmp_path / 'experiments' / 'nan_run'
    assert sorted(path.name for path in (experiment / 'training_states').glob('*.state')) == ['2.state', '4.state']
    assert not (experiment / 'models' / 'net_g_6.pth').exists()
    assert not (experiment / 'models' / 'net_g_latest.pth').exists()


def test_yaml_with_three_mistakes_reports_all_three(demo_data, tmp_path):
    options = train_options(demo_data, 'mistakes')
    options['manul_seed'] = options.pop('manual_seed')
    options['train']['total_iter'] = 'many'
    del options['datasets']['train']['batch_size_per_gpu']
    with pytest.raises(SystemExit) as exit_info:
        train_main(['-opt', str(write_yaml(tmp_path / 'o.yml', options)), '--root', str(tmp_path)])
    message = str(exit_info.value.code)
    assert message.startswith('error: 3 problems in option file') and '\n' not in message
    assert 'manul_seed: unknown key; did you mean "manual_seed"?' in message
    assert "train.total_iter: expected an integer, got str 'many'" in message
    assert 'datasets.train.batch_size_per_gpu: missing' in message
    assert not (tmp_path / 'experiments').exists(), 'nothing may be created before the options are valid'


def test_slurm_variables_become_torch_distributed_ones(monkeypatch, tmp_path):
    for name in ('MASTER_ADDR', 'MASTER_PORT', 'RANK', 'WORLD_SIZE', 'LOCAL_RANK'):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv('PATH', str(tmp_path))  # no scontrol
    monkeypatch.setenv('SLURM_PROCID', '5')
    monkeypatch.setenv('SLURM_NTASKS', '8')
    monkeypatch.setenv('SLURM_LOCALID', '1')
    monkeypatch.setenv('SLURM_NODELIST', 'gpu[07-09,12],cpu3')
    assert export_slurm_environment() == 1
    assert {name: os.environ[name] for name in ('RANK', 'WORLD_SIZE', 'LOCAL_RANK', 'MASTER_ADDR', 'MASTER_PORT')} == {
        'RANK': '5', 'WORLD_SIZE': '8', 'LOCAL_RANK': '1', 'MASTER_ADDR': 'gpu07', 'MASTER_PORT': '29500'}
    assert first_host('node3') == 'node3' and first_host('a-b[10,12]') == 'a-b10'


def test_slurm_launcher_trains_as_a_one_task_job(demo_data, tmp_path, monkeypatch):
    with socket.socket() as probe:
        probe.bind(('127.0.0.1', 0))
        port = probe.getsockname()[1]
    for name in ('RANK', 'WORLD_SIZE', 'LOCAL_RANK'):
        monkeypatch.delenv(name, raising=False)
    for name, value in {'SLURM_PROCID': '0', 'SLURM_NTASKS': '1', 'SLURM_LOCALID': '0', 'SLURM_NODELIST': 'localhost',
                        'MASTER_ADDR': '127.0.0.1', 'MASTER_PORT': str(port)}.items():
        monkeypatch.setenv(name, value)
    options = small_options(demo_data, tmp_path, 'slurm_run', total_iter=2)
    train_main(['-opt', str(write_yaml(tmp_path / 'o.yml', options)), '--root', str(tmp_path), '--launcher', 'slurm'])
    assert (tmp_path / 'experiments' / 'slurm_run' / 'training_states' / '2.state').is_file()
    assert not torch.distributed.is_initialized()
