"""The random state of a training degradation: its own generators, saved with the training state.

The draws of a degradation must not depend on (or disturb) the training's global generators, and a resumed
run must draw what the uninterrupted one drew; so each degradation owns a torch ``Generator`` on the model's
device and a numpy ``RandomState``. basicsr's kernel and noise functions draw from the global generators only:
:meth:`DegradationRNG.as_global` lends them these states for a block and takes the advanced states back.
"""

import random
from contextlib import contextmanager

import numpy as np
import torch

from segsr.utils.rng import isolated_python_numpy_rng, numpy_state_tensors, numpy_state_tuple

SEED_OFFSET = 0x5E65
"""Keeps the degradation's stream apart from the training's, which is seeded with the same manual_seed."""


class DegradationRNG:
    """A torch generator on ``device`` and a numpy generator, seeded from ``seed`` (plus the process rank)."""

    def __init__(self, seed: int, device: torch.device):
        self.device = torch.device(device)
        self.torch = torch.Generator(device=self.device)
        self.torch.manual_seed(seed + SEED_OFFSET)
        self.numpy = np.random.RandomState((seed + SEED_OFFSET) % 2**32)

    def uniform(self, low: float = 0.0, high: float = 1.0, size: int | tuple | None = None):
        return self.numpy.uniform(low, high, size)

    @contextmanager
    def as_global(self):
        """Run a block whose functions draw from torch's (on this device) and numpy's global generators with this
        object's states; the global states outside the block are left as they were."""
        cuda = self.device.type == 'cuda'
        devices = [self.device.index if self.device.index is not None else torch.cuda.current_device()] if cuda \
            else []
        with isolated_python_numpy_rng(), torch.random.fork_rng(devices=devices):
            np.random.set_state(self.numpy.get_state())
            random.seed(int(self.numpy.randint(2**31)))
            if cuda:
                torch.cuda.set_rng_state(self.torch.get_state(), devices[0])
            else:
                torch.set_rng_state(self.torch.get_state())
            yield
            self.numpy.set_state(np.random.get_state())
            self.torch.set_state(torch.cuda.get_rng_state(devices[0]) if cuda else torch.get_rng_state())

    def state_dict(self) -> dict:
        """Tensors and numbers only, so the training state still loads weights-only."""
        return {'torch': self.torch.get_state(), 'numpy': numpy_state_tensors(self.numpy.get_state())}

    def load_state_dict(self, state: dict) -> None:
        self.torch.set_state(state['torch'])
        self.numpy.set_state(numpy_state_tuple(state['numpy']))
