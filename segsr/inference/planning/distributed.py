"""One inference run over many processes: torchrun or Slurm ranks (torch.distributed), or ``--shard i/n``.

Ranks join a gloo process group only to meet and share its key-value store; no tensors travel, so GPUs need
no NCCL here and each rank simply runs its network on ``cuda:LOCAL_RANK``. Through the store ranks count
tiles and files for rank 0's progress bar, hand finished records to rank 0's manifest, announce the bands
of a split scene, and beat a heartbeat: a rank whose heartbeat stops (killed, out of memory, node lost) is
named by every other rank, which stops within seconds, removing its partial files on the way out.
``--shard i/n`` runs are independent processes (job arrays): they share nothing but the input list.
"""

import _thread
import json
import os
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as dist

from segsr.utils.dist import export_slurm_environment
from segsr.utils.errors import SegSRError

BEAT_SECONDS = 0.5
GRACE_SECONDS = 5.0
"""How long a rank that named a dead peer waits for its main thread to unwind before it exits anyway."""


@dataclass(frozen=True)
class Ranks:
    """Where this process stands in a run; ``launcher`` is 'none', 'shard', 'torchrun' or 'slurm'."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0
    launcher: str = 'none'

    @property
    def grouped(self) -> bool:
        """Processes that talk to each other (torchrun, Slurm), as opposed to independent shards."""
        return self.launcher in ('torchrun', 'slurm')


def parse_shard(text: str) -> tuple[int, int]:
    try:
        index, count = (int(part) for part in text.split('/'))
    except ValueError:
        raise SegSRError(f'--shard {text!r}: give INDEX/COUNT, e.g. 0/4 for the first of four shards') from None
    if not 0 <= index < count:
        raise SegSRError(f'--shard {text}: INDEX must lie in 0..COUNT-1, e.g. 0/{max(count, 2)}')
    return index, count


def detect_ranks(shard: str | None = None) -> Ranks:
    """torchrun's WORLD_SIZE/RANK/LOCAL_RANK, srun's SLURM_PROCID/SLURM_NTASKS, or ``--shard i/n``."""
    environ = os.environ
    launched = None
    if int(environ.get('WORLD_SIZE', 1)) > 1 and 'RANK' in environ:
        launched = Ranks(int(environ['RANK']), int(environ['WORLD_SIZE']), int(environ.get('LOCAL_RANK', 0)),
                         'torchrun')
    elif int(environ.get('SLURM_NTASKS', 1)) > 1 and 'SLURM_PROCID' in environ:
        launched = Ranks(int(environ['SLURM_PROCID']), int(environ['SLURM_NTASKS']),
                         int(environ.get('SLURM_LOCALID', 0)), 'slurm')
    if shard is not None:
        if launched is not None:
            raise SegSRError(f'--shard is for runs without a launcher, but this is rank {launched.rank} of a '
                             f'{launched.launcher} run: drop --shard (ranks split the inputs themselves)')
        index, count = parse_shard(shard)
        return Ranks(index, count, 0, 'shard')
    return launched or Ranks()


def rank_device(ranks: Ranks) -> str | None:
    """``cuda:LOCAL_RANK`` for a rank of a launched run on a GPU node; None (the default device) otherwise."""
    if ranks.grouped and torch.cuda.is_available():
        return f'cuda:{ranks.local_rank % torch.cuda.device_count()}'
    return None


class Coordinator:
    """The run's shared key-value store (an in-process one for a single process) behind one lock."""

    def __init__(self, ranks: Ranks, store: dist.Store, rank_timeout: float):
        self.ranks = ranks
        self.store = store
        self.rank_timeout = rank_timeout
        self.lock = threading.Lock()
        self.failure: str | None = None

    def add(self, key: str, amount: int = 1) -> int:
        with self.lock:
            return self.store.add(key, amount)

    def put(self, key: str, value) -> None:
        with self.lock:
            self.store.set(key, json.dumps(value))

    def peek(self, key: str):
        """The value under ``key``, or None while it is not there (never blocks)."""
        with self.lock:
            if not self.store.check([key]):
                return None
            return json.loads(self.store.get(key))

    def wait_for(self, key: str):
        """The value under ``key`` once some rank has put it; the heartbeat monitor ends the wait if ranks die."""
        while (value := self.peek(key)) is None:
            time.sleep(0.1)
        return value

    def publish(self, record: dict) -> None:
        """A finished input, for rank 0's manifest."""
        self.put(f'record/{self.add("records")}', record)

    def records_since(self, seen: int) -> list[dict]:
        count = self.add('records', 0)
        return [self.wait_for(f'record/{number}') for number in range(seen + 1, count + 1)]


def join_run(ranks: Ranks, rank_timeout: float) -> Coordinator:
    """The coordinator of this run: the process group's store for launched ranks, a private one otherwise."""
    if not ranks.grouped:
        return Coordinator(ranks, dist.HashStore(), rank_timeout)
    if ranks.launcher == 'slurm':
        export_slurm_environment()
    os.environ.setdefault('MASTER_ADDR', '127.0.0.1')
    try:
        dist.init_process_group('gloo', timeout=timedelta(seconds=max(rank_timeout, 30)))
    except (RuntimeError, ValueError) as error:
        raise SegSRError(f'rank {ranks.rank} could not join the run ({str(error).splitlines()[0]}): start all '
                         f'{ranks.world} ranks with torchrun or srun') from None
    return Coordinator(ranks, dist.distributed_c10d._get_default_store(), rank_timeout)


def leave_run(coordinator: Coordinator) -> None:
    if coordinator.ranks.grouped and dist.is_initialized():
        dist.destroy_process_group()


class Heartbeat:
    """Beats for this rank and watches the others; names a silent rank and interrupts the main thread.

    ``tick`` is called on every beat (rank 0 refreshes its progress bar and manifest there).
    """

    def __init__(self, coordinator: Coordinator, tick: Callable[[], None]):
        self.coordinator = coordinator
        self.tick = tick
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name='segsr-heartbeat', daemon=True)

    def __enter__(self) -> 'Heartbeat':
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.thread.join()

    def _run(self) -> None:
        ranks = self.coordinator.ranks
        peers = [peer for peer in range(ranks.world) if peer != ranks.rank] if ranks.grouped else []
        last_seen = {peer: (-1, time.monotonic()) for peer in peers}
        while not self.stop.wait(BEAT_SECONDS):
            try:
                if ranks.grouped:
                    self.coordinator.add(f'beat/{ranks.rank}')
                for peer in list(last_seen):
                    if self.coordinator.peek(f'finished/{peer}') is not None:
                        del last_seen[peer]
                        continue
                    beats = self.coordinator.add(f'beat/{peer}', 0)
                    if beats != last_seen[peer][0]:
                        last_seen[peer] = (beats, time.monotonic())
                    elif time.monotonic() - last_seen[peer][1] > self.coordinator.rank_timeout:
                        return self._fail(f'rank {peer} of {ranks.world} stopped responding for '
                                          f'{self.coordinator.rank_timeout:g} s (killed or lost)')
                self.tick()
            except (RuntimeError, OSError) as error:  # the store itself went away with the rank that held it
                return self._fail(f'lost the run\'s store held by rank 0 ({str(error).splitlines()[0]})')

    def _fail(self, reason: str) -> None:
        self.coordinator.failure = f'{reason}; rank {self.coordinator.ranks.rank} stops too, partial files removed'
        _thread.interrupt_main()
        if not self.stop.wait(GRACE_SECONDS):
            print(f'error: {self.coordinator.failure}', file=sys.stderr, flush=True)
            os._exit(1)
