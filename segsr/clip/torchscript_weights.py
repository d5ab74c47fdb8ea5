"""The weights of a TorchScript archive (OpenAI publishes CLIP as one), read without running the archive.

``torch.jit.load`` compiles the archive's code and runs its ``__setstate__`` methods, so a hostile file
runs code as soon as it is opened. Here the archive's ``data.pkl`` is unpickled by a restricted unpickler
that builds script objects as plain attribute holders, tensors from the archive's storages and nothing
else, and the tensors are collected under their module paths, as ``state_dict()`` names them.
"""

import collections
import functools
import pickle
import warnings
import zipfile
from pathlib import Path

import torch

from segsr.utils.errors import SegSRError

ARCHIVE_LISTS = ('build_intlist', 'build_doublelist', 'build_boollist', 'build_tensorlist', 'build_genericlist')


class ScriptObject:
    """A TorchScript module or object: only its attributes are kept."""

    def __setstate__(self, state: dict) -> None:
        self.attributes = state if isinstance(state, dict) else {}


def rebuild_tensor(storage: tuple[torch.UntypedStorage, torch.dtype], offset: int, size: tuple, stride: tuple,
                   *_) -> torch.Tensor:
    untyped, dtype = storage
    return torch.empty(0, dtype=dtype).set_(untyped, offset, size, stride)


@functools.cache
def storage_dtypes() -> dict[str, torch.dtype]:
    """``FloatStorage`` -> ``torch.float32`` and so on: the storage classes TorchScript names tensors' data by."""
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', UserWarning)  # the legacy storage classes are deprecated
        found = {name: getattr(getattr(torch, name), 'dtype', None) for name in dir(torch) if name.endswith('Storage')}
    return {name: dtype for name, dtype in found.items() if isinstance(dtype, torch.dtype)}


class ArchiveUnpickler(pickle.Unpickler):
    """Allows what TorchScript writes for modules and tensors; any other global stops the read."""

    def __init__(self, archive: zipfile.ZipFile, prefix: str):
        super().__init__(archive.open(f'{prefix}data.pkl'))
        self.archive, self.prefix = archive, prefix

    def find_class(self, module: str, name: str):
        if module == '__torch__' or module.startswith('__torch__.'):
            return type(name, (ScriptObject,), {})
        if (module, name) == ('torch._utils', '_rebuild_tensor_v2'):
            return rebuild_tensor
        if module == 'torch' and name in storage_dtypes():
            return storage_dtypes()[name]
        if (module, name) == ('collections', 'OrderedDict'):
            return collections.OrderedDict
        if module == 'torch.jit._pickle' and name in ARCHIVE_LISTS:
            return list
        raise pickle.UnpicklingError(f'global {module}.{name} is not part of a TorchScript module\'s weights')

    def persistent_load(self, pid: tuple) -> tuple[torch.UntypedStorage, torch.dtype]:
        kind, dtype, key, *_ = pid
        if kind != 'storage' or not isinstance(dtype, torch.dtype):
            raise pickle.UnpicklingError(f'unexpected persistent id {kind!r}')
        data = self.archive.read(f'{self.prefix}data/{key}')
        return torch.UntypedStorage.from_buffer(data, dtype=torch.uint8) if data else torch.UntypedStorage(0), dtype


def tensors_of(node: ScriptObject, prefix: str = '') -> dict[str, torch.Tensor]:
    found = {}
    for name, value in getattr(node, 'attributes', {}).items():
        if isinstance(value, torch.Tensor):
            found[prefix + name] = value
        elif isinstance(value, ScriptObject):
            found.update(tensors_of(value, f'{prefix}{name}.'))
    return found


def read_torchscript_weights(path: Path) -> dict[str, torch.Tensor]:
    """Every tensor of the archive's module tree, named by its path (``visual.conv1.weight``)."""
    try:
        with zipfile.ZipFile(path) as archive:
            records = [name for name in archive.namelist() if name.endswith('/data.pkl') and name.count('/') == 1]
            if not records:
                raise SegSRError('not a TorchScript archive: no data.pkl')
            root = ArchiveUnpickler(archive, records[0].removesuffix('data.pkl')).load()
    except (zipfile.BadZipFile, pickle.UnpicklingError, OSError, EOFError, KeyError, ValueError, TypeError,
            RuntimeError) as err:
        raise SegSRError(f'not a readable TorchScript archive: {str(err).strip().splitlines()[0]}') from None
    if not isinstance(root, ScriptObject):
        raise SegSRError('not a TorchScript archive: its data.pkl holds no module')
    return tensors_of(root)
