"""The training loop: basicsr's components, driven the same way on CPU, one GPU or several processes."""

import datetime
import logging
import logging.handlers
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import torch
from basicsr.data.prefetch_dataloader import CPUPrefetcher, CUDAPrefetcher
from basicsr.models import build_model
from basicsr.utils import AvgTimer, MessageLogger, init_tb_logger

from segsr.data.loaders import build_checked_dataset, build_eval_loader, build_train_loader
from segsr.models.step_options import StepOptions
from segsr.options.cli import parse_command_line, setup_options
from segsr.training.experiment import open_experiment, run_logger, saved_checkpoints
from segsr.training.iteration import (
    check_batches_per_epoch,
    check_finite_step,
    micro_batches,
    report_clipping,
    train_iteration,
)
from segsr.training.resume import Progress, load_resume_state, restore_rng
from segsr.utils.errors import SegSRError
from segsr.utils.fresh_folder import FreshFolder
from segsr.utils.loss_log import LossLog
from segsr.utils.rng import all_ranks_rng_state, isolated_rng
from segsr.utils.run_lock import refuse_if_locked
from segsr.utils.signals import StopRequest
from segsr.weights.files import weights_suffix

# Log records kept in memory until the run's log file exists (a start that fails writes none).
EARLY_LOG_CAPACITY = 100_000


def build_loaders(opt: dict, logger: logging.Logger):
    train_loader, train_sampler = build_train_loader(opt['datasets']['train'], opt, logger)
    accum = StepOptions.from_options(opt['train']).accum_iter
    logger.info(f'Training on {len(train_loader.dataset)} images, {len(train_loader) // accum} iterations per epoch, '
                f'batch {opt["datasets"]["train"]["batch_size_per_gpu"]} per process x {opt["world_size"]} processes'
                + (f' x {accum} accumulated batches per iteration.' if accum > 1 else '.'))
    val_loaders = []
    for phase, dataset_opt in opt['datasets'].items():
        if phase != 'train':  # the option schema admits only train, val and val_<n>
            val_loaders.append(build_eval_loader(build_checked_dataset(dataset_opt, phase), dataset_opt, opt, logger))
            logger.info(f'Validation set {dataset_opt["name"]}: {len(val_loaders[-1].dataset)} images.')
    return train_loader, train_sampler, val_loaders


def make_prefetcher(opt: dict, train_loader):
    mode = opt['datasets']['train'].get('prefetch_mode') or 'cpu'
    if mode == 'cpu':
        return CPUPrefetcher(train_loader)
    if mode == 'cuda' and opt['num_gpu'] > 0:
        if not opt['datasets']['train'].get('pin_memory'):
            raise SegSRError('datasets.train.prefetch_mode: cuda needs datasets.train.pin_memory: true')
        return CUDAPrefetcher(train_loader, opt)
    raise SegSRError(f'datasets.train.prefetch_mode: "{mode}" is not available here; use cpu, or cuda on a GPU run')


def validate(model, val_loaders, opt: dict, current_iter: int, tb_logger) -> None:
    """Validate on rank 0 while the other processes wait; no generator draw of the run changes."""
    with isolated_rng(opt['num_gpu'] > 0):
        for val_loader in val_loaders:
            model.validation(val_loader, current_iter, tb_logger, opt['val'].get('save_img', False))
    if opt['dist']:
        torch.distributed.barrier()


@contextmanager
def naming_last_checkpoint(opt: dict, last_saved: int | None) -> Iterator[None]:
    """A checkpoint that cannot be written (disk full) ends the run with one line that also names the last
    complete one, which is intact: files are written under a temporary name and renamed."""
    try:
        yield
    except SegSRError as err:
        models = Path(opt['path']['models'])
        last = (f'the last complete checkpoint is {models / f"net_g_{last_saved}{weights_suffix(opt)}"} with its '
                'training state'
                if last_saved else 'no checkpoint of this run was complete yet')
        raise SegSRError(f'{err}; {last}; free space, then continue with --auto_resume') from None


def save_state(model, opt: dict, progress: Progress, last_saved: int | None) -> None:
    """Weights and training state at ``progress.iteration`` (all processes call; rank 0 writes)."""
    extra = {
        'rng': all_ranks_rng_state(opt['num_gpu'] > 0),
        'sampler': {'epoch_samples': progress.epoch_samples},
        'nonfinite_steps': progress.nonfinite_total,
        'clipped_steps': progress.clipped_total,
    }
    with naming_last_checkpoint(opt, last_saved):
        model.save(progress.epoch, progress.iteration, extra_state=extra)


@dataclass
class Run:
    """Everything a run needs, built before the experiment folder is touched."""

    train_loader: object
    train_sampler: object
    val_loaders: list
    model: object
    progress: Progress
    resumed: bool


def build_run(opt: dict, resume_state: dict | None, logger: logging.Logger) -> Run:
    """Data, network, weights and resumed state: whatever of these fails, fails before anything is written."""
    train_loader, train_sampler, val_loaders = build_loaders(opt, logger)
    model = build_model(opt)
    progress = Progress()
    if resume_state:
        model.resume_training(resume_state)
        progress = Progress.from_state(resume_state, logger)
        restore_rng(resume_state, opt, logger)
        logger.info(f'Resuming training from epoch {progress.epoch}, iteration {progress.iteration} '
                    f'({progress.epoch_samples} samples of the epoch already used).')
    return Run(train_loader, train_sampler, val_loaders, model, progress, resumed=resume_state is not None)


def train(opt: dict, opt_file: str) -> None:
    logger = run_logger(opt)
    early_log = logging.handlers.MemoryHandler(EARLY_LOG_CAPACITY, flushLevel=logging.CRITICAL + 1)
    logger.addHandler(early_log)
    lock = log_handler = None
    created: list[FreshFolder] = []
    try:
        if opt['rank'] == 0:
            refuse_if_locked(Path(opt['path']['experiments_root']))
        resume_state = load_resume_state(opt, logger)
        run = build_run(opt, resume_state, logger)
        lock, log_handler = open_experiment(opt, opt_file, run.resumed, logger, early_log, created)
        run_training(opt, run, logger)
    except BaseException as err:
        if not created or saved_checkpoints(opt):
            raise
        for folder in reversed(created):  # a half-made run is removed; an earlier run moves back in place
            folder.undo()
        if isinstance(err, SegSRError):
            raise SegSRError(f'{err} (this run saved no checkpoint, so its folder {created[0].path} was removed; '
                             'an earlier run of that name is back in place)') from None
        raise
    finally:
        logger.removeHandler(early_log)
        if log_handler is not None:
            logger.removeHandler(log_handler)
            log_handler.close()
        if lock is not None:
            lock.release()


def run_training(opt: dict, run: Run, logger: logging.Logger) -> None:
    tb_logger = None
    if opt['logger']['use_tb_logger'] and 'debug' not in opt['name'] and opt['rank'] == 0:
        tb_logger = init_tb_logger(log_dir=str(Path(opt['root_path']) / 'tb_logger' / opt['name']))
    train_loader, train_sampler, val_loaders, model, progress = (
        run.train_loader, run.train_sampler, run.val_loaders, run.model, run.progress)
    total_iters = int(opt['train']['total_iter'])
    steps = StepOptions.from_options(opt['train'])
    check_batches_per_epoch(len(train_loader), steps.accum_iter)
    global_batch = train_loader.batch_size * opt['world_size']
    max_nonfinite = int(opt['train']['max_nonfinite_steps'])
    loss_log = LossLog(Path(opt['path']['experiments_root']) / 'losses.jsonl', enabled=opt['rank'] == 0,
                       resume_iter=progress.iteration if run.resumed else None)

    msg_logger = MessageLogger(opt, progress.iteration, tb_logger)
    prefetcher = make_prefetcher(opt, train_loader)
    print_freq = opt['logger']['print_freq'] or 0  # null: never
    save_freq = opt['logger']['save_checkpoint_freq'] or 0  # null: at the end (and on a stop request) only
    val_freq = int(opt['val'].get('val_freq') or 0) if opt.get('val') else 0
    last_saved = progress.iteration if run.resumed else None

    logger.info(f'Start training from epoch {progress.epoch}, iteration {progress.iteration}.')
    data_timer, iter_timer = AvgTimer(), AvgTimer()
    start_time = time.time()
    with StopRequest() as stop:
        while progress.iteration < total_iters:
            train_sampler.set_epoch(progress.epoch, progress.epoch_samples)
            prefetcher.reset()
            train_data = prefetcher.next()
            while train_data is not None and progress.iteration < total_iters:
                batches = micro_batches(prefetcher, train_data, steps.accum_iter)
                if batches is None:
                    train_data = None
                    break
                data_timer.record()
                progress.iteration += 1
                current_iter = progress.iteration
                model.update_learning_rate(current_iter, warmup_iter=opt['train'].get('warmup_iter', -1))
                train_iteration(model, batches, current_iter)
                progress.epoch_samples += global_batch * len(batches)
                progress.clipped_total += model.last_step_clipped
                iter_timer.record()
                loss_log.write(current_iter, progress.epoch, model.get_current_learning_rate()[0],
                               model.get_current_log(), model.last_step_skipped,
                               clipped=model.last_step_clipped if steps.grad_clip_max_norm else None)
                check_finite_step(model, progress, max_nonfinite, logger)
                if current_iter == 1:
                    msg_logger.reset_start_time()
                if print_freq and current_iter % print_freq == 0:
                    msg_logger({'epoch': progress.epoch, 'iter': current_iter,
                                'lrs': model.get_current_learning_rate(), 'time': iter_timer.get_avg_time(),
                                'data_time': data_timer.get_avg_time(), **model.get_current_log()})
                    if steps.grad_clip_max_norm:
                        report_clipping(progress, steps.grad_clip_max_norm, logger)
                stopping = stop.agreed()
                if (save_freq and current_iter % save_freq == 0) or stopping:
                    logger.info(f'Saving models and training state of iteration {current_iter}.')
                    save_state(model, opt, progress, last_saved)
                    last_saved = current_iter
                if stopping:
                    logger.warning(f'Stop requested ({stop.signal_name or "by another process"}): '
                                   f'the state of iteration {current_iter} is saved; continue with --auto_resume.')
                    return
                if val_freq and current_iter % val_freq == 0:
                    validate(model, val_loaders, opt, current_iter, tb_logger)
                data_timer.start()
                iter_timer.start()
                train_data = prefetcher.next()
            if train_data is None:
                progress.epoch += 1
                progress.epoch_samples = 0

    logger.info(f'End of training after {datetime.timedelta(seconds=int(time.time() - start_time))}. '
                'Saving the latest model.')
    if last_saved != progress.iteration:
        save_state(model, opt, progress, last_saved)
        last_saved = progress.iteration
    with naming_last_checkpoint(opt, last_saved):
        model.save(epoch=-1, current_iter=-1)
    if val_loaders and not (val_freq and progress.iteration % val_freq == 0):
        validate(model, val_loaders, opt, progress.iteration, tb_logger)
    if tb_logger:
        tb_logger.close()


def main(argv: list[str] | None = None) -> None:
    args = parse_command_line(is_train=True, argv=argv)
    try:
        opt = setup_options(args, is_train=True)
        torch.backends.cudnn.benchmark = opt['num_gpu'] > 0
        train(opt, args.opt)
    except SegSRError as err:
        sys.exit(f'error: {err}')
    finally:
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()
