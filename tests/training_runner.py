"""``segsr/train.py`` for subprocess tests, with hooks that stop a run at an exact point.

    python tests/training_runner.py [--block-after-state N] [--signal-at-iter K [--signal-rank R]]
                                    [--restless-loss-scale S] <train args>

It also registers ``NoisyEDSR`` (a tiny EDSR behind a dropout layer), whose training draws from
torch's generator at every step, so resuming without the saved generator state would show.
"""

import argparse
import os
import signal
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402
from torch import nn  # noqa: E402

from segsr.models.precision import Performance  # noqa: E402
from segsr.models.sr_model import SegSRModel  # noqa: E402  (imports segsr, which patches basicsr first)
from segsr.training import main  # noqa: E402


class NoisyEDSR(nn.Module):
    def __init__(self, dropout: float = 0.2, **edsr_options):
        from basicsr.archs.edsr_arch import EDSR

        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.edsr = EDSR(**edsr_options)

    def forward(self, x):
        return self.edsr(self.dropout(x))


def block_after_state(iteration: int) -> None:
    """Hang (until killed) right after the training state of ``iteration`` is written."""
    save = SegSRModel.save_training_state

    def save_then_block(self, epoch, current_iter, extra_state=None):
        save(self, epoch, current_iter, extra_state)
        if current_iter == iteration:
            time.sleep(3600)

    SegSRModel.save_training_state = save_then_block


def signal_at_iteration(iteration: int, rank: int) -> None:
    """Send SIGTERM to this process (if it has ``rank``) right after the step of ``iteration``."""
    optimize = SegSRModel.optimize_parameters

    def optimize_then_signal(self, current_iter):
        optimize(self, current_iter)
        if current_iter == iteration and self.opt['rank'] == rank:
            os.kill(os.getpid(), signal.SIGTERM)

    SegSRModel.optimize_parameters = optimize_then_signal


def restless_loss_scale(init_scale: float) -> None:
    """fp16 loss scale that starts at ``init_scale`` and doubles after every good step, so within a few
    steps it overflows, skips a step and halves: its state then differs from a fresh scaler's."""

    def scaler(self, device: torch.device) -> torch.amp.GradScaler:
        if device.type not in self.scalers:
            enabled = self.train_amp == torch.float16
            self.scalers[device.type] = torch.amp.GradScaler(
                device.type, init_scale=init_scale, growth_interval=1, enabled=enabled
            )
        return self.scalers[device.type]

    Performance.scaler = scaler


if __name__ == '__main__':
    parser = argparse.ArgumentParser()
    parser.add_argument('--block-after-state', type=int)
    parser.add_argument('--signal-at-iter', type=int)
    parser.add_argument('--signal-rank', type=int, default=0)
    parser.add_argument('--restless-loss-scale', type=float)
    args, train_args = parser.parse_known_args()
    from basicsr.utils.registry import ARCH_REGISTRY

    ARCH_REGISTRY.register()(NoisyEDSR)
    if args.block_after_state is not None:
        block_after_state(args.block_after_state)
    if args.signal_at_iter is not None:
        signal_at_iteration(args.signal_at_iter, args.signal_rank)
    if args.restless_loss_scale is not None:
        restless_loss_scale(args.restless_loss_scale)
    main(train_args)
