"""Process-group setup that works on GPUs (NCCL) and on CPUs (gloo) alike."""

import os
import subprocess

import torch
import torch.distributed as dist

from segsr.utils.errors import SegSRError


def init_dist(launcher: str, use_gpu: bool) -> None:
    """Join the process group that torchrun (``pytorch``) or Slurm (``slurm``) describes in the environment."""
    if launcher == 'pytorch':
        missing = [name for name in ('RANK', 'WORLD_SIZE', 'LOCAL_RANK', 'MASTER_ADDR') if name not in os.environ]
        if missing:
            raise SegSRError(
                f'--launcher pytorch needs {", ".join(missing)} in the environment; start with '
                '`torchrun --nproc_per_node=N segsr/train.py -opt X.yml --launcher pytorch`'
            )
        local_rank = int(os.environ['LOCAL_RANK'])
    elif launcher == 'slurm':
        local_rank = _export_slurm_environment()
    else:
        raise SegSRError(f'unknown launcher "{launcher}"; use none, pytorch or slurm')
    if use_gpu:
        torch.cuda.set_device(local_rank % torch.cuda.device_count())
    dist.init_process_group(backend='nccl' if use_gpu else 'gloo')


def _export_slurm_environment() -> int:
    """Translate SLURM_* variables into the ones ``init_process_group`` reads; return the local rank."""
    try:
        rank = int(os.environ['SLURM_PROCID'])
        world_size = int(os.environ['SLURM_NTASKS'])
        local_rank = int(os.environ.get('SLURM_LOCALID', 0))
        node_list = os.environ['SLURM_NODELIST']
    except KeyError as err:
        raise SegSRError(f'--launcher slurm needs {err.args[0]} in the environment; start the job with srun') from None
    hosts = subprocess.run(['scontrol', 'show', 'hostnames', node_list], capture_output=True, text=True, check=False)
    first_node = hosts.stdout.split()[0] if hosts.returncode == 0 and hosts.stdout.strip() else node_list.split(',')[0]
    os.environ.setdefault('MASTER_ADDR', first_node)
    os.environ.setdefault('MASTER_PORT', '29500')
    os.environ['RANK'] = str(rank)
    os.environ['WORLD_SIZE'] = str(world_size)
    os.environ['LOCAL_RANK'] = str(local_rank)
    return local_rank
