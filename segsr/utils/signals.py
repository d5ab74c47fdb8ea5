"""Stopping on SIGTERM/SIGINT at a step boundary, agreed by every process of the run."""

import signal

import torch
import torch.distributed as dist

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def ignore_stop_signals(worker_id: int) -> None:
    """Loader workers leave stopping to the training process, which still needs them to finish a step."""
    for signum in STOP_SIGNALS:
        signal.signal(signum, signal.SIG_IGN)


class StopRequest:
    """Records SIGTERM/SIGINT instead of dying; a second signal gets the previous (default) behaviour.

    The handler only sets a flag (logging from a signal handler can deadlock on the logger's lock).

    Use as a context manager around the training loop, and ask :meth:`agreed` once per step.
    """

    def __init__(self):
        self.signal_name: str | None = None
        self._previous: dict[int, object] = {}

    def __enter__(self) -> 'StopRequest':
        for signum in STOP_SIGNALS:
            self._previous[signum] = signal.signal(signum, self._record)
        return self

    def __exit__(self, *exc_info) -> None:
        self._restore_handlers()

    def _restore_handlers(self) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()

    def _record(self, signum: int, frame) -> None:
        self.signal_name = signal.Signals(signum).name
        self._restore_handlers()

    def agreed(self) -> bool:
        """Whether any process of the run was asked to stop; a collective call in a distributed run."""
        requested = self.signal_name is not None
        if not (dist.is_available() and dist.is_initialized()):
            return requested
        backend_device = 'cuda' if dist.get_backend() == 'nccl' else 'cpu'
        flag = torch.tensor([float(requested)], device=backend_device)
        dist.all_reduce(flag, op=dist.ReduceOp.MAX)
        return bool(flag.item())
