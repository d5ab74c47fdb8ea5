"""The optimisers ``optim_<net>.type`` may name, and the train/eval switch schedule-free ones need.

basicsr 1.4.2 builds Adam only; the table of types lives in the option schema (``OPTIMIZERS``), so a
wrong name is refused with the others before any work. A schedule-free optimiser (``AdamWScheduleFree``
of the ``schedulefree`` package) keeps two sets of weights: the training point, on which gradients are
taken, and their average, which is the model to validate and save. It is switched with
``optimizer.train()`` before a training step and ``optimizer.eval()`` before validation and saving.
"""

import importlib
from collections.abc import Iterable

import torch

from segsr.options.schema import OPTIMIZERS
from segsr.utils.errors import SegSRError


def optimizer_class(optim_type: str) -> type[torch.optim.Optimizer]:
    """The class an optimiser type names (its package imported only when it is used)."""
    if optim_type not in OPTIMIZERS:
        raise SegSRError(f'optimiser {optim_type!r} is not available; use one of {", ".join(OPTIMIZERS)}')
    module, name = OPTIMIZERS[optim_type].rsplit('.', 1)
    try:
        return getattr(importlib.import_module(module), name)
    except ImportError:
        raise SegSRError(f'optimiser {optim_type} needs the {module} package; pip install {module}') from None


def build_optimizer(optim_type: str, params: Iterable[torch.nn.Parameter], lr: float,
                    **kwargs) -> torch.optim.Optimizer:
    """The optimiser of ``params`` with the remaining ``optim_<net>`` options as its keyword arguments (options it
    refuses raise its own TypeError or ValueError, which the option check turns into one line)."""
    return optimizer_class(optim_type)(params, lr, **kwargs)


def set_training_mode(optimizers: Iterable[torch.optim.Optimizer], training: bool) -> None:
    """Put schedule-free optimisers (those with ``train``/``eval``) in training or evaluation mode; others
    have one set of weights and are left alone. Switching to the mode already set changes nothing."""
    for optimizer in optimizers:
        switch = getattr(optimizer, 'train' if training else 'eval', None)
        if callable(switch):
            switch()
