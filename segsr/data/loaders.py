"""Dataset construction with one-line errors for the data problems users hit."""

from dataclasses import dataclass

from basicsr.data import build_dataset
from torch.utils.data import Dataset

from segsr.data.file_check import FileCheck, check_dataset_files
from segsr.utils.errors import SegSRError


@dataclass(frozen=True)
class CheckedDataset:
    """A built dataset and the check of its files (None where its files are not on disk)."""

    dataset: Dataset
    check: FileCheck | None
    where: str

    def log_check(self, logger) -> None:
        if self.check is None:
            logger.info(f'{self.where}: files not checked beforehand (not on disk or not listed by the dataset).')
        else:
            self.check.log(logger, self.where)


def apply_loader_defaults(dataset_opt: dict, num_gpu: int) -> None:
    """Pinned memory on GPU runs and persistent workers, unless the options say otherwise.

    The loader reads ``num_worker_per_gpu``, ``pin_memory`` and ``persistent_workers`` (which has
    no effect without workers); the training loop reads ``prefetch_mode`` (cpu or cuda).
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


def build_checked_datasets(datasets_opt: dict) -> dict[str, CheckedDataset]:
    """Every dataset of a run, built and checked before the run writes anything."""
    return {phase: build_checked_dataset(dataset_opt, phase) for phase, dataset_opt in datasets_opt.items()}
