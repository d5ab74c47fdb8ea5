"""Checkpoint files: written atomically, read safely, and named for basicsr's layout."""

import os
import pickle
import re
import warnings
from pathlib import Path
from typing import Any

import torch

from segsr.utils.errors import SegSRError
from segsr.utils.files import atomic_open, write_failure
from segsr.weights.safetensors_files import SUFFIX as SAFETENSORS
from segsr.weights.safetensors_files import is_safetensors, load_safetensors, save_safetensors

WEIGHTS_FORMATS = {'safetensors': SAFETENSORS, 'pth': '.pth'}
DEFAULT_FORMAT = 'safetensors'


def atomic_torch_save(obj: Any, path: str | os.PathLike) -> None:
    """Save so that a job killed mid-write never leaves a truncated checkpoint under the real name.

    A failed write (a full disk: torch reports it as a RuntimeError) is a one-line error naming the file;
    the temporary file is removed and an earlier file of that name is left as it was.
    """
    try:
        with atomic_open(path) as handle:
            torch.save(obj, handle)
    except (OSError, RuntimeError) as err:
        raise write_failure(path, err, 'checkpoint') from None


def weights_suffix(opt: dict) -> str:
    """The suffix of the weights a run writes: ``logger.save_checkpoint_format`` (safetensors unless pth)."""
    return WEIGHTS_FORMATS[(opt.get('logger') or {}).get('save_checkpoint_format') or DEFAULT_FORMAT]


def save_weights(checkpoint: dict, path: str | os.PathLike) -> None:
    """Write a weights checkpoint atomically, as safetensors or a torch file by the suffix of ``path``."""
    if Path(path).suffix == SAFETENSORS:
        save_safetensors(checkpoint, path)
    else:
        atomic_torch_save(checkpoint, path)


def existing_weights(path: str | os.PathLike) -> Path:
    """``path``, or where it does not exist its twin in the other weights format (``net_g_latest.pth`` named in
    an option file finds the ``net_g_latest.safetensors`` a run now writes, and the reverse)."""
    path = Path(path)
    if path.is_file() or path.suffix not in WEIGHTS_FORMATS.values():
        return path
    twins = [path.with_suffix(suffix) for suffix in WEIGHTS_FORMATS.values() if suffix != path.suffix]
    return next((twin for twin in twins if twin.is_file()), path)


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = 'cpu') -> dict:
    """Load a checkpoint without running code from it: safetensors (by extension or content) with safetensors'
    reader, anything else with torch's weights-only unpickler; a one-line error when unreadable."""
    path = existing_weights(path)
    if not path.is_file():
        raise SegSRError(f'checkpoint {path} does not exist; check the path in your options or on the command line')
    if is_safetensors(path):
        return load_safetensors(path, map_location)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings('ignore', message='Detected pickle protocol')
            warnings.filterwarnings('ignore', message="'torch.load' received a zip file that looks like a TorchScript")
            return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        raise SegSRError(refusal(path, err)) from None
    except Exception as err:  # torch raises many types for corrupt files
        if 'TorchScript' in str(err):
            raise SegSRError(f'checkpoint {path} cannot be read: it is a TorchScript archive, which holds code that '
                             'segsr never runs: pass the weights saved with torch.save (a state dict)') from None
        raise SegSRError(
            f'checkpoint {path} cannot be read ({plain_reason(err)}); it is truncated or not a torch checkpoint: '
            'use another file or re-save it'
        ) from None


def plain_reason(error: Exception) -> str:
    """The first line of torch's message, without its sentences about loading with the full unpickler."""
    first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    sentences = [part for part in re.split(r'(?<=\.) ', first) if 'weights_only' not in part and 'trusted' not in part]
    return ' '.join(sentences).strip() or type(error).__name__


UNPICKLER_REASON = re.compile(r'WeightsUnpickler error:\s*(.+?)(?:\.\s|\n|$)')


def refusal(path: Path, error: pickle.UnpicklingError) -> str:
    """Why a file was refused by the weights-only unpickler, on one line, without torch's advice to load it
    with the full unpickler (which would run whatever code the file holds)."""
    found = UNPICKLER_REASON.search(str(error))
    reason = f' ({found.group(1).strip()})' if found else ''
    return (f'checkpoint {path} cannot be read: it holds more than tensors and plain containers{reason}; segsr '
            'reads weights only and never runs code from a file: save the weights alone (torch.save of a state dict) '
            'or use another file')


def select_state_dict(checkpoint: dict, param_key: str | None, path: str | os.PathLike) -> dict:
    """Pick ``params_ema``/``params`` from a basicsr checkpoint, falling back to ``params``, then to
    ``params_ema`` (the one state dict of a run's final safetensors file)."""
    if param_key is None:
        return checkpoint
    for key in (param_key, 'params', 'params_ema'):
        if key in checkpoint:
            return checkpoint[key]
    if all(isinstance(value, torch.Tensor) for value in checkpoint.values()):
        return checkpoint
    raise SegSRError(
        f'checkpoint {path} has no "{param_key}" or "params" entry (keys: {", ".join(sorted(checkpoint))}); '
        'set path.param_key_g to one of those keys'
    )


def check_finite_weights(state_dict: dict, source: str) -> None:
    """Weights holding NaN or infinity make every output NaN (written as zeros or nodata): refuse them at load."""
    bad = [key for key, value in state_dict.items()
           if isinstance(value, torch.Tensor) and value.is_floating_point() and not torch.isfinite(value).all()]
    if bad:
        shown = ', '.join(bad[:3]) + (f' (+{len(bad) - 3} more)' if len(bad) > 3 else '')
        raise SegSRError(f'checkpoint {source} holds NaN or infinite weights in {len(bad)} tensors ({shown}); '
                         'use a checkpoint saved before training diverged')


def describe_key_mismatch(missing: list[str], unexpected: list[str], limit: int = 5) -> str:
    """Summarise state-dict key differences on one line."""

    def listing(keys: list[str]) -> str:
        shown = ', '.join(keys[:limit])
        return f'{shown} (+{len(keys) - limit} more)' if len(keys) > limit else shown

    parts = []
    if missing:
        parts.append(f'missing {len(missing)} keys: {listing(missing)}')
    if unexpected:
        parts.append(f'unexpected {len(unexpected)} keys: {listing(unexpected)}')
    return '; '.join(parts)


KEY_MISMATCH_FIX = (
    'use a checkpoint of this architecture, or set path.strict_load_g: false to load the matching keys only'
)


def load_state_dict_checked(
    net: torch.nn.Module, state_dict: dict, strict: bool, source: str, fix: str = KEY_MISMATCH_FIX
) -> None:
    """``load_state_dict`` whose failures name the missing and unexpected keys and ``fix``, on one line."""
    state_dict = {key.removeprefix('module.'): value for key, value in state_dict.items()}
    own = net.state_dict()
    shape_errors = [
        f'{key} {tuple(value.shape)} vs network {tuple(own[key].shape)}'
        for key, value in state_dict.items()
        if key in own and hasattr(value, 'shape') and value.shape != own[key].shape
    ]
    if shape_errors:
        raise SegSRError(
            f'checkpoint {source} does not fit the network: shape mismatch in {len(shape_errors)} tensors, e.g. '
            f'{"; ".join(shape_errors[:3])}; build the network with the options the checkpoint was trained with'
        )
    try:
        net.load_state_dict(state_dict, strict=strict)
    except RuntimeError:
        missing = sorted(set(own) - set(state_dict))
        unexpected = sorted(set(state_dict) - set(own))
        mismatch = describe_key_mismatch(missing, unexpected)
        raise SegSRError(
            f'checkpoint {source} does not fit the network ({mismatch}); {fix}'
        ) from None
