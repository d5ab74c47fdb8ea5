"""Dataset construction with one-line errors for the data problems users hit."""

from basicsr.data import build_dataset
from torch.utils.data import Dataset

from segsr.utils.errors import SegSRError


def apply_loader_defaults(dataset_opt: dict, num_gpu: int) -> None:
    """Pinned memory on GPU runs and persistent workers, unless the options say otherwise.

    The loader reads ``num_worker_per_gpu``, ``pin_memory`` and ``persistent_workers`` (which has
    no effect without workers); the training loop reads ``prefetch_mode`` (cpu or cuda).
    """
    dataset_opt.setdefault('pin_memory', num_gpu > 0)
    dataset_opt.setdefault('persistent_workers', True)


def build_checked_dataset(dataset_opt: dict, phase: str) -> Dataset:
    """Build a registered dataset; a folder that yields no pairs, or no images at all, is an error."""
    where = f'datasets.{phase}'
    try:
        dataset = build_dataset(dataset_opt)
    except (AssertionError, ValueError, FileNotFoundError, OSError) as err:
        message = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise SegSRError(f'{where} ({dataset_opt.get("type")}): {message}; check the dataroot and meta_info '
                         'options of this dataset') from None
    if len(dataset) == 0:
        folders = ', '.join(str(dataset_opt[key]) for key in ('dataroot_gt', 'dataroot_lq') if dataset_opt.get(key))
        raise SegSRError(f'{where}: no images found in {folders or "the dataroot"}; '
                         'put images there or point dataroot_gt/dataroot_lq at the right folders')
    return dataset

