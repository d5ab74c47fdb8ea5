"""The training loop: basicsr's components, driven the same way on CPU, one GPU or several processes."""

import datetime
import logging
import math
import sys
import time
from pathlib import Path

import torch
from basicsr.data import build_dataloader
from basicsr.data.data_sampler import EnlargedSampler
from basicsr.data.prefetch_dataloader import CPUPrefetcher, CUDAPrefetcher
from basicsr.models import build_model
from basicsr.utils import (
    AvgTimer,
    MessageLogger,
    check_resume,
    get_env_info,
    get_root_logger,
    get_time_str,
    init_tb_logger,
    make_exp_dirs,
    mkdir_and_rename,
)
from basicsr.utils.options import copy_opt_file, dict2str

from segsr.data.loaders import apply_loader_defaults, build_checked_dataset
from segsr.options import parse_command_line, setup_options
from segsr.utils.checkpoint import load_checkpoint
from segsr.utils.errors import SegSRError


def newest_state(states_dir: Path) -> Path | None:
    """The training state with the highest iteration number in ``states_dir``."""
    states = [path for path in states_dir.glob('*.state') if path.stem.isdigit()] if states_dir.is_dir() else []
    return max(states, key=lambda path: int(path.stem), default=None)


def load_resume_state(opt: dict) -> dict | None:
    """Find the state to resume from: the newest under this experiment's root, or ``path.resume_state``."""
    if opt['auto_resume']:
        path = newest_state(Path(opt['path']['training_states']))
        if path is not None:
            opt['path']['resume_state'] = str(path)
    path = opt['path'].get('resume_state')
    if not path:
        return None
    state = load_checkpoint(path)
    check_resume(opt, state['iter'])
    return state


def prepare_experiment(opt: dict, opt_file: str, resumed: bool) -> logging.Logger:
    if not resumed:
        make_exp_dirs(opt)
        if opt['logger'].get('use_tb_logger') and 'debug' not in opt['name'] and opt['rank'] == 0:
            mkdir_and_rename(str(Path(opt['root_path']) / 'tb_logger' / opt['name']))
    copy_opt_file(opt_file, opt['path']['experiments_root'])
    log_file = Path(opt['path']['log']) / f"train_{opt['name']}_{get_time_str()}.log"
    logger = get_root_logger(logger_name='basicsr', log_level=logging.INFO, log_file=str(log_file))
    logger.info(get_env_info())
    logger.info(dict2str(opt))
    return logger


def build_loaders(opt: dict, logger: logging.Logger):
    train_loader = train_sampler = None
    val_loaders = []
    for phase, dataset_opt in opt['datasets'].items():
        if phase == 'train':
            enlarge = dataset_opt.get('dataset_enlarge_ratio', 1)
            train_set = build_checked_dataset(dataset_opt, phase)
            train_sampler = EnlargedSampler(train_set, opt['world_size'], opt['rank'], enlarge)
            apply_loader_defaults(dataset_opt, phase, opt['num_gpu'])
            train_loader = build_dataloader(train_set, dataset_opt, num_gpu=opt['num_gpu'], dist=opt['dist'],
                                            sampler=train_sampler, seed=opt['manual_seed'])
            iters_per_epoch = math.ceil(len(train_set) * enlarge /
                                        (dataset_opt['batch_size_per_gpu'] * opt['world_size']))
            logger.info(f'Training on {len(train_set)} images, {iters_per_epoch} iterations per epoch, '
                        f'batch {dataset_opt["batch_size_per_gpu"]} per process x {opt["world_size"]} processes.')
        elif phase.split('_')[0] == 'val':
            val_set = build_checked_dataset(dataset_opt, phase)
            val_loader = build_dataloader(val_set, dataset_opt, num_gpu=opt['num_gpu'], dist=opt['dist'],
                                          sampler=None, seed=opt['manual_seed'])
            logger.info(f'Validation set {dataset_opt["name"]}: {len(val_set)} images.')
            val_loaders.append(val_loader)
        else:
            raise SegSRError(f'datasets.{phase}: unknown phase; name dataset sections train, val or val_<n>')
    if train_loader is None:
        raise SegSRError('the options have no datasets.train section; add one (see options/train/demo_HAT_SRx4.yml)')
    return train_loader, train_sampler, val_loaders, iters_per_epoch


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
    for val_loader in val_loaders:
        model.validation(val_loader, current_iter, tb_logger, opt['val'].get('save_img', False))


def train(opt: dict, opt_file: str) -> None:
    resume_state = load_resume_state(opt)
    logger = prepare_experiment(opt, opt_file, resumed=resume_state is not None)
    tb_logger = None
    if opt['logger'].get('use_tb_logger', True) and 'debug' not in opt['name']:
        tb_logger = init_tb_logger(log_dir=str(Path(opt['root_path']) / 'tb_logger' / opt['name']))
    opt['logger'].setdefault('use_tb_logger', tb_logger is not None)

    train_loader, train_sampler, val_loaders, iters_per_epoch = build_loaders(opt, logger)
    total_iters = int(opt['train']['total_iter'])
    total_epochs = math.ceil(total_iters / iters_per_epoch)

    model = build_model(opt)
    start_epoch, current_iter = 0, 0
    if resume_state:
        model.resume_training(resume_state)
        start_epoch, current_iter = resume_state['epoch'], resume_state['iter']
        logger.info(f'Resuming training from epoch {start_epoch}, iteration {current_iter}.')

    msg_logger = MessageLogger(opt, current_iter, tb_logger)
    prefetcher = make_prefetcher(opt, train_loader)
    print_freq = opt['logger'].get('print_freq', 100)
    save_freq = opt['logger'].get('save_checkpoint_freq', 5000)
    val_freq = opt.get('val', {}).get('val_freq') if opt.get('val') else None

    logger.info(f'Start training from epoch {start_epoch}, iteration {current_iter}.')
    data_timer, iter_timer = AvgTimer(), AvgTimer()
    start_time = time.time()
    epoch = start_epoch
    for epoch in range(start_epoch, total_epochs + 1):
        train_sampler.set_epoch(epoch)
        prefetcher.reset()
        train_data = prefetcher.next()
        while train_data is not None and current_iter < total_iters:
            data_timer.record()
            current_iter += 1
            model.update_learning_rate(current_iter, warmup_iter=opt['train'].get('warmup_iter', -1))
            model.feed_data(train_data)
            model.optimize_parameters(current_iter)
            iter_timer.record()
            if current_iter == 1:
                msg_logger.reset_start_time()
            if current_iter % print_freq == 0:
                msg_logger({'epoch': epoch, 'iter': current_iter, 'lrs': model.get_current_learning_rate(),
                            'time': iter_timer.get_avg_time(), 'data_time': data_timer.get_avg_time(),
                            **model.get_current_log()})
            if current_iter % save_freq == 0:
                logger.info('Saving models and training states.')
                model.save(epoch, current_iter)
            if val_freq and current_iter % val_freq == 0:
                validate(model, val_loaders, opt, current_iter, tb_logger)
            data_timer.start()
            iter_timer.start()
            train_data = prefetcher.next()
        if current_iter >= total_iters:
            break

    logger.info(f'End of training after {datetime.timedelta(seconds=int(time.time() - start_time))}. '
                'Saving the latest model.')
    model.save(epoch=-1, current_iter=-1)
    if val_loaders and not (val_freq and current_iter % val_freq == 0):
        validate(model, val_loaders, opt, current_iter, tb_logger)
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

