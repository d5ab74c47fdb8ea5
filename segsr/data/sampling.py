"""Training batches that a resumed or multi-process run reproduces exactly.

The order of an epoch is a permutation drawn from (seed, epoch). Every sample's augmentation
randomness is drawn from (seed, epoch, position in that permutation), not from whatever state the
loading process happens to be in, so neither the number of processes, nor the number of loader
workers, nor a restart in the middle of an epoch changes which crops and flips a step sees.
"""

import math
from collections.abc import Iterator

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from segsr.utils.rng import isolated_python_numpy_rng


def derived_seed(*keys: int) -> int:
    """A well-mixed 32-bit seed from a tuple of non-negative integers."""
    return int(np.random.SeedSequence([key % 2**32 for key in keys]).generate_state(1)[0])


class ResumableSampler(Sampler):
    """``EnlargedSampler``'s split of an enlarged, shuffled epoch over processes, resumable mid-epoch.

    Yields ``(dataset index, sample seed)`` pairs for :class:`SeededSamples`. Process ``rank`` takes
    positions ``rank, rank + world_size, ...`` of the epoch's permutation, so the union of one step's
    batches over all processes is the same run of positions a single process with the whole batch
    would take.
    """

    def __init__(self, dataset_size: int, num_replicas: int, rank: int, ratio: int = 1, seed: int = 0):
        self.dataset_size = dataset_size
        self.num_replicas = num_replicas
        self.rank = rank
        self.seed = seed
        self.num_samples = math.ceil(dataset_size * ratio / num_replicas)
        self.total_size = self.num_samples * num_replicas
        self.epoch = 0
        self.start = 0

    def set_epoch(self, epoch: int, start: int = 0) -> None:
        """Select the epoch, skipping its first ``start`` positions (samples already used, over all processes)."""
        self.epoch = epoch
        self.start = start

    def _positions(self) -> range:
        first = self.start + (self.rank - self.start) % self.num_replicas
        return range(first, self.total_size, self.num_replicas)

    def __iter__(self) -> Iterator[tuple[int, int]]:
        generator = torch.Generator().manual_seed(derived_seed(self.seed, self.epoch))
        order = torch.randperm(self.total_size, generator=generator).tolist()
        for position in self._positions():
            yield order[position] % self.dataset_size, derived_seed(self.seed, self.epoch, position)

    def __len__(self) -> int:
        return len(self._positions())


class SeededSamples(Dataset):
    """A dataset whose items are drawn with python's and numpy's generators seeded per sample.

    basicsr's datasets crop and flip with the global ``random`` and ``numpy.random`` generators;
    seeding them per sample (and restoring them afterwards) makes each item a function of its key.
    """

    def __init__(self, dataset: Dataset):
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key: tuple[int, int]) -> dict:
        index, seed = key
        with isolated_python_numpy_rng(seed):
            return self.dataset[index]
