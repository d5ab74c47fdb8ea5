"""One rank of a two-process gloo run that takes one accumulated step; run by test_trainer_steps.py.

    RANK=r WORLD_SIZE=2 MASTER_ADDR=127.0.0.1 MASTER_PORT=p python tests/accumulation_worker.py OUT_FOLDER

Rank r trains on micro-batches 2r and 2r+1 of ``micro_batches()``; it writes its weights afterwards and
how many micro-batches it ran under DDP's ``no_sync``.
"""

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402
from torch.nn.parallel import DistributedDataParallel  # noqa: E402

import segsr  # noqa: E402, F401  (patches basicsr first)
from segsr.models.precision import MicroStep, Performance  # noqa: E402

MICRO_BATCHES = 4


def tiny_network() -> torch.nn.Module:
    from basicsr.archs.edsr_arch import EDSR

    torch.manual_seed(0)
    return EDSR(num_in_ch=3, num_out_ch=3, num_feat=8, num_block=1, upscale=2, img_range=1.0)


def micro_batches() -> list[tuple[torch.Tensor, torch.Tensor]]:
    gen = torch.Generator().manual_seed(1)
    return [(torch.rand(2, 3, 6, 6, generator=gen), torch.rand(2, 3, 12, 12, generator=gen))
            for _ in range(MICRO_BATCHES)]


def main(out: Path) -> None:
    torch.distributed.init_process_group('gloo')
    rank, world = torch.distributed.get_rank(), torch.distributed.get_world_size()
    net = DistributedDataParallel(tiny_network())
    unsynced = []
    no_sync = DistributedDataParallel.no_sync

    def counting_no_sync(self):
        unsynced.append(True)
        return no_sync(self)

    DistributedDataParallel.no_sync = counting_no_sync
    optimizer = torch.optim.SGD(net.parameters(), 0.5)
    mine = micro_batches()[rank * MICRO_BATCHES // world:(rank + 1) * MICRO_BATCHES // world]
    perf = Performance()
    for index, (lq, gt) in enumerate(mine):
        perf.train_step(net, optimizer, lq, lambda out, gt=gt: {'l1': torch.nn.functional.l1_loss(out, gt)},
                        micro=MicroStep(index, len(mine)))
    torch.save({'params': net.module.state_dict(), 'unsynced': len(unsynced)}, out / f'rank{rank}.pt')
    torch.distributed.destroy_process_group()


if __name__ == '__main__':
    os.environ.setdefault('OMP_NUM_THREADS', '1')
    main(Path(sys.argv[1]))
