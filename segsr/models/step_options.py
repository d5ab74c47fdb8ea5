"""What one training iteration is: ``train.accum_iter``, ``train.grad_clip_max_norm`` and ``train.ema_start_iter``.

One iteration is one optimiser step. With ``accum_iter: N`` it takes N batches of
``batch_size_per_gpu`` (per process), whose gradients are summed with each loss divided by N, so the
step is that of the mean loss over a batch N times larger (exactly so for networks without batch
statistics); the learning-rate schedule, ``total_iter``, logging, validation and checkpoint frequencies
all count optimiser steps. ``grad_clip_max_norm`` clips the global 2-norm of the gradients before the
step (null: no clipping). The EMA network copies the trained network up to iteration ``ema_start_iter``
and averages it (``ema_decay``) from the iteration after.
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class StepOptions:
    """The ``train`` options of one optimiser step; the option schema has checked their values."""

    accum_iter: int = 1
    grad_clip_max_norm: float | None = None
    ema_start_iter: int = 0

    @classmethod
    def from_options(cls, train_opt: dict | None) -> 'StepOptions':
        train_opt = train_opt or {}
        max_norm = train_opt.get('grad_clip_max_norm')
        return cls(accum_iter=int(train_opt.get('accum_iter', 1)),
                   grad_clip_max_norm=float(max_norm) if max_norm is not None else None,
                   ema_start_iter=int(train_opt.get('ema_start_iter', 0)))
