"""One training iteration: gradient accumulation, gradient clipping, EMA warm-up and the optimiser table."""

import copy
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import TINY_EDSR, train_options, write_yaml

import segsr  # noqa: F401  (registers archs and models)
from segsr.models.precision import MicroStep, Performance
from segsr.models.sr_model import SegSRModel
from segsr.options.schema import validate_options
from segsr.training import main as train_main
from segsr.utils.loss_log import read_loss_log
from segsr.weights.files import load_checkpoint

EDSR_X2 = {**TINY_EDSR, 'upscale': 2}
WORKER = Path(__file__).with_name('accumulation_worker.py')


def model_options(optim: dict | None = None, **train) -> dict:
    return {
        'name': 'steps', 'model_type': 'SegSRModel', 'scale': 2, 'num_gpu': 0, 'is_train': True, 'dist': False,
        'rank': 0, 'world_size': 1, 'network_g': dict(EDSR_X2), 'path': {'pretrain_network_g': None},
        'train': {
            'ema_decay': 0, 'optim_g': optim or {'type': 'SGD', 'lr': 0.5},
            'scheduler': {'type': 'MultiStepLR', 'milestones': [100], 'gamma': 0.5},
            'pixel_opt': {'type': 'L1Loss', 'loss_weight': 1.0, 'reduction': 'mean'}, **train,
        },
    }


def build(options: dict, seed: int = 0) -> SegSRModel:
    torch.manual_seed(seed)
    return SegSRModel(options)


def batches(count: int, size: int, seed: int = 1) -> list[dict]:
    gen = torch.Generator().manual_seed(seed)
    return [{'lq': torch.rand(size, 3, 6, 6, generator=gen), 'gt': torch.rand(size, 3, 12, 12, generator=gen)}
            for _ in range(count)]


def concatenated(parts: list[dict]) -> dict:
    return {key: torch.cat([part[key] for part in parts]) for key in parts[0]}


def iterate(model: SegSRModel, parts: list[dict], current_iter: int = 1) -> None:
    """What the training loop does for one iteration (segsr.training.iteration.train_iteration)."""
    for index, part in enumerate(parts):
        model.micro_step = MicroStep(index, len(parts))
        model.feed_data(part)
        model.optimize_parameters(current_iter)
    model.micro_step = MicroStep()


def parameters(model: SegSRModel) -> dict[str, torch.Tensor]:
    return {name: p.detach().clone() for name, p in model.net_g.named_parameters()}


@pytest.mark.parametrize('optim', [{'type': 'SGD', 'lr': 0.5}, {'type': 'Adam', 'lr': 1e-3}])
def test_accumulated_micro_batches_step_as_the_larger_batch(optim):
    parts = batches(3, 2)
    large = build(model_options(optim))
    large.feed_data(concatenated(parts))
    large.optimize_parameters(1)
    accumulated = build(model_options(optim, accum_iter=3))
    iterate(accumulated, parts)

    start = parameters(build(model_options(optim)))
    moved = {name: (p - start[name]).abs().max() for name, p in parameters(large).items()}
    assert max(moved.values()) > 1e-4, 'the step must change the weights for the comparison to mean anything'
    for name, value in parameters(accumulated).items():
        torch.testing.assert_close(value, parameters(large)[name], rtol=1e-5, atol=1e-6)
    assert accumulated.log_dict['l_pix'] == pytest.approx(large.log_dict['l_pix'], rel=1e-5)
    assert int(accumulated.optimizer_g.state_dict()['state'].get(0, {}).get('step', 1)) == 1, 'one optimiser step'


def test_without_accumulation_the_step_is_the_plain_one_bit_for_bit():
    part = batches(1, 2)[0]
    model = build(model_options({'type': 'Adam', 'lr': 1e-3, 'betas': [0.9, 0.99]}))
    reference = copy.deepcopy(model.net_g)
    optimizer = torch.optim.Adam(reference.parameters(), 1e-3, betas=(0.9, 0.99))
    for step in range(1, 3):
        model.feed_data(part)
        model.optimize_parameters(step)
        optimizer.zero_grad(set_to_none=True)
        torch.nn.functional.l1_loss(reference(part['lq']), part['gt']).backward()
        optimizer.step()
    for name, p in reference.named_parameters():
        assert torch.equal(p, dict(model.net_g.named_parameters())[name])


def test_a_nonfinite_micro_batch_skips_the_whole_step():
    parts = batches(2, 2)
    parts[0]['gt'][0, 0, 0, 0] = float('nan')
    model = build(model_options(accum_iter=2))
    before = parameters(model)
    iterate(model, parts)
    assert model.last_step_skipped
    assert all(torch.equal(p, before[name]) for name, p in parameters(model).items())


def test_ddp_exchanges_gradients_on_the_last_micro_batch_only(monkeypatch, tmp_path):
    """A one-process gloo group, so the DDP wrapper is real; its no_sync is counted."""
    torch.distributed.init_process_group('gloo', init_method=f'file://{tmp_path / "store"}', rank=0, world_size=1)
    try:
        torch.manual_seed(0)
        net = torch.nn.parallel.DistributedDataParallel(torch.nn.Conv2d(3, 3, 3, padding=1))
        entered = []
        no_sync = torch.nn.parallel.DistributedDataParallel.no_sync

        def counting_no_sync(self):
            entered.append(True)
            return no_sync(self)

        monkeypatch.setattr(torch.nn.parallel.DistributedDataParallel, 'no_sync', counting_no_sync)
        optimizer = torch.optim.SGD(net.parameters(), 0.1)
        perf = Performance()
        lq = torch.rand(1, 3, 4, 4)
        for index in range(3):
            perf.train_step(net, optimizer, lq, lambda out: {'l1': out.abs().mean()}, micro=MicroStep(index, 3))
            assert len(entered) == min(index + 1, 2)
        perf.train_step(net, optimizer, lq, lambda out: {'l1': out.abs().mean()})
        assert len(entered) == 2, 'without accumulation every step exchanges its gradients'
    finally:
        torch.distributed.destroy_process_group()


def global_norm(params) -> float:
    return float(torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in params if p.grad is not None])))


def test_gradients_are_clipped_to_the_maximum_norm_and_the_step_says_so():
    part = batches(1, 2)[0]
    free = build(model_options())
    free.feed_data(part)
    free.optimize_parameters(1)
    assert not free.last_step_clipped and 'grad_norm' not in free.log_dict
    norm = global_norm(free.net_g.parameters())

    clipped = build(model_options(grad_clip_max_norm=norm / 10))
    clipped.feed_data(part)
    clipped.optimize_parameters(1)
    assert clipped.last_step_clipped
    assert clipped.log_dict['grad_norm'] == pytest.approx(norm, rel=1e-5), 'the norm as it was before clipping'
    assert global_norm(clipped.net_g.parameters()) == pytest.approx(norm / 10, rel=1e-4)

    loose = build(model_options(grad_clip_max_norm=norm * 10))
    loose.feed_data(part)
    loose.optimize_parameters(1)
    assert not loose.last_step_clipped
    for name, value in parameters(loose).items():
        torch.testing.assert_close(value, parameters(free)[name], rtol=0, atol=0)


def test_ema_copies_the_network_until_its_start_then_averages():
    model = build(model_options({'type': 'SGD', 'lr': 0.5}, ema_decay=0.5, ema_start_iter=2))
    bare = model.get_bare_model(model.net_g)
    for step, part in enumerate(batches(3, 2), start=1):
        ema_before = {name: p.detach().clone() for name, p in model.net_g_ema.named_parameters()}
        model.feed_data(part)
        model.optimize_parameters(step)
        for name, p in model.net_g_ema.named_parameters():
            trained = dict(bare.named_parameters())[name].detach()
            if step <= 2:
                assert torch.equal(p, trained), f'iteration {step} is before the EMA starts: a copy'
            else:
                torch.testing.assert_close(p, 0.5 * ema_before[name] + 0.5 * trained)
                assert not torch.equal(p, trained)


def test_adamw_is_built_with_its_weight_decay():
    model = build(model_options({'type': 'AdamW', 'lr': 1e-3, 'weight_decay': 0.05}))
    assert type(model.optimizer_g) is torch.optim.AdamW
    assert model.optimizer_g.param_groups[0]['weight_decay'] == 0.05


def test_schedule_free_trains_and_validates_and_saves_the_averaged_weights(tmp_path, monkeypatch):
    options = model_options({'type': 'AdamWScheduleFree', 'lr': 1e-2, 'warmup_steps': 0})
    options['path'] |= {'models': str(tmp_path), 'training_states': str(tmp_path)}
    model = build(options)
    for step, part in enumerate(batches(3, 2), start=1):
        model.feed_data(part)
        model.optimize_parameters(step)
    assert model.optimizer_g.param_groups[0]['train_mode']
    training_point = parameters(model)

    seen = {}

    def spy(dataloader, current_iter, tb_logger, save_img):
        seen['train_mode'] = model.optimizer_g.param_groups[0]['train_mode']
        seen['weights'] = parameters(model)
        return []

    monkeypatch.setattr(model, 'nondist_validation', spy)
    model.validation(None, 3, None)
    assert seen['train_mode'] is False
    assert any(not torch.equal(value, training_point[name]) for name, value in seen['weights'].items())

    model.save(0, 3)
    saved = load_checkpoint(tmp_path / 'net_g_3.safetensors')['params']
    for name, value in seen['weights'].items():
        assert torch.equal(saved[name], value), 'the averaged (evaluation) weights are saved'

    model.feed_data(batches(1, 2, seed=5)[0])
    model.optimize_parameters(4)
    assert model.optimizer_g.param_groups[0]['train_mode'], 'training switches back'


@pytest.mark.parametrize('train, message', [
    ({'accum_iter': 0}, 'train.accum_iter: must be at least 1, got 0'),
    ({'grad_clip_max_norm': -1.0}, 'train.grad_clip_max_norm: must be greater than 0, got -1.0'),
    ({'ema_start_iter': -5}, 'train.ema_start_iter: must be at least 0, got -5'),
    ({'optim_g': {'type': 'adamw', 'lr': 1e-3}},
     'train.optim_g.type: unknown optimiser \'adamw\'; did you mean "AdamW"?'),
])
def test_bad_step_options_are_one_line_each(train, message):
    options = model_options(**train)
    options['train'] |= {'total_iter': 1, **train}
    options['datasets'] = {'train': {'name': 'x', 'type': 'PairedImageDataset', 'batch_size_per_gpu': 1}}
    with pytest.raises(segsr.utils.errors.SegSRError) as info:
        validate_options(options, 'steps.yml', is_train=True)
    assert message in str(info.value) and '\n' not in str(info.value)


def test_a_run_counts_optimiser_steps_as_iterations_and_logs_its_clipped_steps(demo_data, tmp_path):
    options = train_options(demo_data, 'parity', total_iter=2)
    options['train'] |= {'accum_iter': 2, 'grad_clip_max_norm': 1e-6, 'ema_start_iter': 1,
                         'optim_g': {'type': 'AdamW', 'lr': 1e-3, 'weight_decay': 0.01}}
    train_main(['-opt', str(write_yaml(tmp_path / 'train.yml', options)), '--root', str(tmp_path)])

    experiment = tmp_path / 'experiments' / 'parity'
    records = read_loss_log(experiment / 'losses.jsonl')
    assert [record['iter'] for record in records] == [1, 2]
    assert all(record['clipped'] and record['grad_norm'] > 1e-6 for record in records)
    state = torch.load(experiment / 'training_states' / '2.state', weights_only=True)
    assert {int(s['step']) for s in state['optimizers'][0]['state'].values()} == {2}, 'one step per iteration'
    assert state['clipped_steps'] == 2
    assert state['sampler']['epoch_samples'] == 2 * 2 * options['datasets']['train']['batch_size_per_gpu']
    log = next((experiment).glob('train_parity_*.log')).read_text()
    assert 'Gradient norm clipped to 1e-06 in 1 step since the last report (2 of 2 in total)' in log


def test_an_epoch_shorter_than_one_iteration_is_refused_in_one_line(demo_data, tmp_path):
    options = train_options(demo_data, 'too_long', total_iter=1)
    options['train']['accum_iter'] = 10_000
    with pytest.raises(SystemExit) as info:
        train_main(['-opt', str(write_yaml(tmp_path / 'train.yml', options)), '--root', str(tmp_path)])
    assert 'fewer than train.accum_iter (10000)' in str(info.value) and '\n' not in str(info.value)
    assert not (tmp_path / 'experiments' / 'too_long').exists()


def test_two_processes_accumulating_step_as_one_process_on_all_their_batches(tmp_path):
    """gloo on CPU: each rank accumulates two micro-batches and exchanges gradients once, on the last."""
    from accumulation_worker import micro_batches, tiny_network

    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        port = sock.getsockname()[1]
    env = {key: value for key, value in os.environ.items() if key not in ('RANK', 'WORLD_SIZE', 'LOCAL_RANK')}
    ranks = [subprocess.Popen([sys.executable, str(WORKER), str(tmp_path)], env={
        **env, 'RANK': str(rank), 'WORLD_SIZE': '2', 'MASTER_ADDR': '127.0.0.1', 'MASTER_PORT': str(port),
        'OMP_NUM_THREADS': '1', 'PYTHONPATH': str(WORKER.parents[1])}) for rank in range(2)]
    assert [process.wait(timeout=300) for process in ranks] == [0, 0]

    net = tiny_network()
    optimizer = torch.optim.SGD(net.parameters(), 0.5)
    lq, gt = (torch.cat(parts) for parts in zip(*micro_batches(), strict=True))
    torch.nn.functional.l1_loss(net(lq), gt).backward()
    optimizer.step()
    for rank in range(2):
        result = torch.load(tmp_path / f'rank{rank}.pt', weights_only=True)
        assert result['unsynced'] == 1, 'the first of the two micro-batches runs without the gradient exchange'
        for name, value in net.state_dict().items():
            torch.testing.assert_close(result['params'][name], value, rtol=1e-5, atol=1e-6)
