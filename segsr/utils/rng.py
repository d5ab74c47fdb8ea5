"""Random-number-generator states that survive ``torch.load(weights_only=True)``.

Python's and numpy's own state objects hold tuples and arrays that the safe unpickler rejects, so
they are stored as tensors, ints and strings and rebuilt on load.
"""

import random
from contextlib import contextmanager

import numpy as np
import torch
import torch.distributed as dist


def numpy_state_tensors(numpy_state: tuple) -> dict:
    """A numpy ``RandomState`` state tuple as tensors and numbers, which a weights-only load accepts."""
    name, key, pos, has_gauss, gauss = numpy_state
    return {'name': name, 'key': torch.from_numpy(key.astype(np.int64)), 'pos': int(pos),
            'has_gauss': int(has_gauss), 'gauss': float(gauss)}


def numpy_state_tuple(state: dict) -> tuple:
    """The inverse of :func:`numpy_state_tensors`."""
    return state['name'], state['key'].numpy().astype(np.uint32), state['pos'], state['has_gauss'], state['gauss']


def capture_rng_state(use_cuda: bool) -> dict:
    """The python, numpy, torch CPU and (when ``use_cuda``) CUDA generator states of this process."""
    version, mt_state, gauss = random.getstate()
    state = {
        'python': {'version': version, 'state': torch.tensor(mt_state, dtype=torch.int64), 'gauss': gauss},
        'numpy': numpy_state_tensors(np.random.get_state()),
        'torch': torch.get_rng_state(),
    }
    if use_cuda:
        state['cuda'] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict) -> None:
    """Put back the generator states that :func:`capture_rng_state` returned."""
    python = state['python']
    random.setstate((python['version'], tuple(python['state'].tolist()), python['gauss']))
    np.random.set_state(numpy_state_tuple(state['numpy']))
    torch.set_rng_state(state['torch'])
    if 'cuda' in state:
        torch.cuda.set_rng_state_all(state['cuda'])


@contextmanager
def isolated_python_numpy_rng(seed: int | None = None):
    """Run a block on python's and numpy's global generators without disturbing their state outside it."""
    python_state, numpy_state = random.getstate(), np.random.get_state()
    try:
        if seed is not None:
            random.seed(seed)
            np.random.seed(seed)
        yield
    finally:
        random.setstate(python_state)
        np.random.set_state(numpy_state)


@contextmanager
def isolated_rng(use_cuda: bool):
    """Run a block (validation) with every global generator restored afterwards, so it changes no later draw."""
    devices = list(range(torch.cuda.device_count())) if use_cuda else []
    with isolated_python_numpy_rng(), torch.random.fork_rng(devices=devices):
        yield


def all_ranks_rng_state(use_cuda: bool) -> list[dict]:
    """Every process's generator states, indexed by rank (a collective call in a distributed run)."""
    state = capture_rng_state(use_cuda)
    if not (dist.is_available() and dist.is_initialized()):
        return [state]
    states: list = [None] * dist.get_world_size()
    dist.all_gather_object(states, state)
    return states
