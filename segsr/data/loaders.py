"""Datasets and their loaders, built in one place with one set of defaults and one-line errors."""

import logging
from dataclasses import dataclass

import torch
from basicsr.data import build_dataloader, build_dataset
from basicsr.data.prefetch_dataloader import PrefetchDataLoader
from torch.utils.data import DataLoader, Dataset

from segsr.data.file_check import FileCheck, check_dataset_files
from segsr.data.sampling import ResumableSampler, SeededSamples, derived_seed
from segsr.utils.errors import SegSRError
from segsr.utils.signals import ignore_stop_signals


@dataclass(frozen=True)
class CheckedDataset:
    """A built dataset and the check of its files (None where its files are not on disk)."""

    dataset: Dataset
    check: FileCheck | None
    where: str

    def log_check(self, logger: logging.Logger) -> None:
        if self.check is None:
            logger.info(f'{self.where}: files not checked beforehand (not on disk or not listed by the dataset).')
        else:
            self.check.log(logger, self.where)


def apply_loader_defaults(dataset_opt: dict, num_gpu: int) -> None:
    """Pinned memory on GPU runs and persistent workers, unless the options say otherwise.

    The loader reads ``num_worker_per_gpu``, ``pin_memory`` and ``persistent_workers`` (which has
    no effect without workers); the training loop reads ``prefetch_mode`` (cpu or cuda). Called once,
    when the options are completed, so every reader sees the same values.
    """
    dataset_opt.setdefault('pin_memory', num_gpu > 0)
    dataset_opt.setdefault('persistent_workers', True)


def build_checked_dataset(dataset_opt: dict, phase: str) -> CheckedDataset:
    """Build a registered dataset and check every file it lists (headers and sizes, see ``file_check``).

    A folder that yields no pairs, no images at all, or a bad file is a one-line error.
    """
    where = f'datasets.{phase}'
    try:
        dataset = build_dataset(dataset_opt)
    except SegSRError as err:
        raise SegSRError(f'{where}: {err}') from None
    except (AssertionError, ValueError, FileNotFoundError, OSError) as err:
        message = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise SegSRError(f'{where} ({dataset_opt.get("type")}): {message}; check the dataroot and meta_info '
                         'options of this dataset') from None
    if len(dataset) == 0:
        folders = ', '.join(str(dataset_opt[key]) for key in ('dataroot_gt', 'dataroot_lq') if dataset_opt.get(key))
        raise SegSRError(f'{where}: no images found in {folders or "the dataroot"}; '
                         'put images there or point dataroot_gt/dataroot_lq at the right folders')
    return CheckedDataset(dataset, check_dataset_files(dataset, dataset_opt, where), where)


def build_train_loader(dataset_opt: dict, opt: dict, logger: logging.Logger) -> tuple[DataLoader, ResumableSampler]:
    """The training set, its resumable sampler and its loader, with basicsr's batch, worker and prefetch options.

    ``dataset_opt`` has been completed by :func:`apply_loader_defaults`.
    """
    checked = build_checked_dataset(dataset_opt, 'train')
    checked.log_check(logger)
    dataset = checked.dataset
    processes_per_loader = 1 if opt['dist'] else max(opt['num_gpu'], 1)
    sampler = ResumableSampler(len(dataset), opt['world_size'], opt['rank'],
                               dataset_opt.get('dataset_enlarge_ratio', 1), opt['manual_seed'])
    num_workers = dataset_opt.get('num_worker_per_gpu', 0) * processes_per_loader
    loader_args = dict(
        dataset=SeededSamples(dataset), batch_size=dataset_opt['batch_size_per_gpu'] * processes_per_loader,
        sampler=sampler, num_workers=num_workers, drop_last=True, pin_memory=dataset_opt['pin_memory'],
        persistent_workers=dataset_opt['persistent_workers'] and num_workers > 0,
        worker_init_fn=ignore_stop_signals if num_workers > 0 else None,
        # the loader draws its workers' base seed from this generator, not from the global one that
        # the network's own randomness (dropout, drop-path) uses and that a resumed run restores
        generator=torch.Generator().manual_seed(derived_seed(opt['manual_seed'], opt['rank'])),
    )
    if dataset_opt.get('prefetch_mode') == 'cpu':
        loader = PrefetchDataLoader(num_prefetch_queue=dataset_opt.get('num_prefetch_queue', 1), **loader_args)
    else:
        loader = DataLoader(**loader_args)
    if len(loader) == 0:
        raise SegSRError(f'datasets.train: {len(dataset)} images do not fill one batch of {loader.batch_size}; '
                         'lower batch_size_per_gpu or raise dataset_enlarge_ratio')
    return loader, sampler


def build_eval_loader(checked: CheckedDataset, dataset_opt: dict, opt: dict, logger: logging.Logger) -> DataLoader:
    """A validation or test loader over a checked dataset: basicsr's, one image at a time, in order."""
    checked.log_check(logger)
    return build_dataloader(checked.dataset, dataset_opt, num_gpu=opt['num_gpu'], dist=opt['dist'], sampler=None,
                            seed=opt['manual_seed'])
