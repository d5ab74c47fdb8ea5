"""safetensors weights files: tensors without pickle, and the checkpoint's options, contract and card as JSON metadata.

A segsr checkpoint is a dict of state dicts (``params``, ``params_ema``) beside plain entries (``network_g``,
``radiometry``, ``card``, ``options``). In a safetensors file each tensor is named ``<param key>.<name>`` and each
plain entry is a JSON string in the header's metadata, so the file alone rebuilds its network. A file of one state
dict (a run's final ``net_g_latest``) names its tensors bare, as spandrel and other readers of bare state dicts
expect, and records the key in ``segsr_weights_key``.
"""

import json
import os
import struct
from pathlib import Path

import torch

from segsr.utils.errors import SegSRError
from segsr.utils.files import atomic_open, write_failure

SUFFIX = '.safetensors'
FORMAT_KEY = 'segsr_format'
PARAM_KEYS = 'segsr_param_keys'
BARE_KEY = 'segsr_weights_key'
FORMAT_VERSION = '1'


def is_safetensors(path: str | os.PathLike) -> bool:
    """By extension, else by content: an 8-byte little-endian header length, then the JSON header's ``{``."""
    path = Path(path)
    if path.suffix == SUFFIX:
        return True
    try:
        with open(path, 'rb') as handle:
            head = handle.read(9)
        size = path.stat().st_size
    except OSError:
        return False
    return len(head) == 9 and head[8:9] == b'{' and 0 < struct.unpack('<Q', head[:8])[0] <= size - 8


def to_safetensors(checkpoint: dict) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """The tensors and the metadata of a checkpoint; tensors are copied so that none share memory."""
    tensors, metadata, keys = {}, {FORMAT_KEY: FORMAT_VERSION}, []
    for key, value in checkpoint.items():
        if isinstance(value, dict) and value and all(isinstance(item, torch.Tensor) for item in value.values()):
            keys.append(key)
            tensors.update({f'{key}.{name}': tensor.detach().cpu().contiguous().clone()
                            for name, tensor in value.items()})
        elif value is not None:
            metadata[key] = json.dumps(value, default=str, sort_keys=True)
    metadata[PARAM_KEYS] = json.dumps(keys)
    if len(keys) == 1:
        metadata[BARE_KEY] = keys[0]
        tensors = {name.removeprefix(f'{keys[0]}.'): tensor for name, tensor in tensors.items()}
    return tensors, metadata


def save_safetensors(checkpoint: dict, path: str | os.PathLike) -> None:
    """Write ``checkpoint`` as a safetensors file, atomically (a failed write leaves an earlier file intact)."""
    from safetensors.torch import save

    tensors, metadata = to_safetensors(checkpoint)
    try:
        with atomic_open(path) as handle:
            handle.write(save(tensors, metadata=metadata))
    except (OSError, RuntimeError) as err:
        raise write_failure(path, err, 'checkpoint') from None


def safetensors_metadata(path: str | os.PathLike) -> dict[str, str]:
    """The header's metadata (strings), read without loading any tensor."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework='pt') as handle:
            return handle.metadata() or {}
    except Exception as err:  # safetensors raises its own error type for corrupt headers
        raise unreadable(path, err) from None


def load_safetensors_entry(path: str | os.PathLike, key: str) -> object:
    """One plain entry (``card``, ``network_g``...) of a segsr safetensors file, from its header alone."""
    value = safetensors_metadata(path).get(key)
    try:
        return None if value is None else json.loads(value)
    except json.JSONDecodeError:
        raise SegSRError(f'checkpoint {path} holds unreadable {key!r} metadata; save it again with segsr') from None


def load_safetensors(path: str | os.PathLike, map_location: str | torch.device = 'cpu') -> dict:
    """A checkpoint dict from a safetensors file: segsr's own in the layout it was saved with, any other file as
    its bare state dict (with any metadata left out, as it holds no segsr entries)."""
    from safetensors.torch import load_file

    metadata = safetensors_metadata(path)
    try:
        tensors = load_file(str(path), device=str(map_location))
    except Exception as err:
        raise unreadable(path, err) from None
    if FORMAT_KEY not in metadata:
        return tensors
    checkpoint: dict = {key: {} for key in json.loads(metadata[PARAM_KEYS])}
    if BARE_KEY in metadata:
        checkpoint[metadata[BARE_KEY]] = tensors
    else:
        for name, tensor in tensors.items():
            key, _, rest = name.partition('.')
            checkpoint[key][rest] = tensor
    for key, value in metadata.items():
        if key not in (FORMAT_KEY, PARAM_KEYS, BARE_KEY):
            try:
                checkpoint[key] = json.loads(value)
            except json.JSONDecodeError:
                raise SegSRError(f'checkpoint {path} holds unreadable {key!r} metadata; save it again with '
                                 'segsr') from None
    return checkpoint


def unreadable(path: str | os.PathLike, err: Exception) -> SegSRError:
    reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    return SegSRError(f'checkpoint {path} cannot be read as safetensors ({reason}); it is truncated or not a '
                      'safetensors file: use another file or save it again')
