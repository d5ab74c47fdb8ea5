"""Real-ESRGAN's training-pair pool: pairs of several batches mixed, so one batch does not hold one image's crops."""

import torch

from segsr.degradations.random_state import DegradationRNG
from segsr.utils.errors import SegSRError


class TrainingPairPool:
    """Fills with the first ``size / batch`` batches (passing them through), then shuffles and swaps a batch in."""

    def __init__(self, size: int, rng: DegradationRNG):
        self.size, self.rng = int(size), rng
        self.tensors: list[torch.Tensor | None] = []
        self.filled = 0

    def exchange(self, lq: torch.Tensor, gt: torch.Tensor, mask: torch.Tensor | None) -> tuple:
        batch = lq.shape[0]
        if self.size % batch:
            raise SegSRError(f'queue_size {self.size} is not divisible by the batch size {batch}; use a multiple')
        incoming = [lq, gt, mask]
        if not self.tensors:
            self.tensors = [None if t is None else t.new_zeros((self.size, *t.shape[1:])) for t in incoming]
        if self.filled < self.size:
            for store, tensor in zip(self.tensors, incoming, strict=True):
                if store is not None:
                    store[self.filled:self.filled + batch] = tensor.detach()
            self.filled += batch
            return lq, gt, mask
        order = torch.randperm(self.size, generator=self.rng.torch, device=self.rng.device).to(lq.device)
        self.tensors = [None if store is None else store[order] for store in self.tensors]
        out = [None if store is None else store[:batch].clone() for store in self.tensors]
        for store, tensor in zip(self.tensors, incoming, strict=True):
            if store is not None:
                store[:batch] = tensor.detach()
        return tuple(out)

    def state_dict(self) -> dict:
        return {'filled': self.filled, 'tensors': [None if t is None else t.cpu() for t in self.tensors]}

    def load_state_dict(self, state: dict) -> None:
        self.filled = int(state['filled'])
        device = self.rng.device
        self.tensors = [None if t is None else t.to(device) for t in state['tensors']]
