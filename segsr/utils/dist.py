"""Process-group setup that works on GPUs (NCCL) and on CPUs (gloo) alike."""

import os
import re
import shutil
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
        local_rank = export_slurm_environment()
    else:
        raise SegSRError(f'unknown launcher "{launcher}"; use none, pytorch or slurm')
    if use_gpu:
        torch.cuda.set_device(local_rank % torch.cuda.device_count())
    dist.init_process_group(backend='nccl' if use_gpu else 'gloo')


def first_host(node_list: str) -> str:
    """The first host of a Slurm node list such as ``gpu[07-09,12],cpu3`` (``gpu07``), without scontrol."""
    match = re.match(r'([^,\[]+)(?:\[([^\],-]+))?', node_list.strip())
    if match is None:
        raise SegSRError(f'SLURM_NODELIST "{node_list}" is not a Slurm node list; start the job with srun')
    prefix, first_index = match.groups()
    return prefix + (first_index or '')


def _master_host(node_list: str) -> str:
    scontrol = shutil.which('scontrol')
    if scontrol:
        hosts = subprocess.run([scontrol, 'show', 'hostnames', node_list], capture_output=True, text=True, check=False)
        if hosts.returncode == 0 and hosts.stdout.strip():
            return hosts.stdout.split()[0]
    return first_host(node_list)


def export_slurm_environment() -> int:
    """Translate SLURM_* variables into the ones ``init_process_group`` reads; return the local rank.

    MASTER_ADDR defaults to the job's first node and MASTER_PORT to 29500; set either beforehand to override.
    """
    try:
        rank = int(os.environ['SLURM_PROCID'])
        world_size = int(os.environ['SLURM_NTASKS'])
        local_rank = int(os.environ.get('SLURM_LOCALID', 0))
        node_list = os.environ['SLURM_NODELIST']
    except KeyError as err:
        raise SegSRError(f'--launcher slurm needs {err.args[0]} in the environment; start the job with srun') from None
    os.environ.setdefault('MASTER_ADDR', _master_host(node_list))
    os.environ.setdefault('MASTER_PORT', '29500')
    os.environ['RANK'] = str(rank)
    os.environ['WORLD_SIZE'] = str(world_size)
    os.environ['LOCAL_RANK'] = str(local_rank)
    return local_rank
