"""The benchmark harness the scripts share: the networks of the option files, the precision modes, one job
per fresh process, timing with the device synchronised, peak memory and FLOP counting.

Used by scripts/benchmark.py, scripts/benchmark_hat.py and scripts/compare_loss_curves.py.
"""

import argparse
import multiprocessing
import platform
import resource
import statistics
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import torch

from segsr.options.safe_yaml import load_option_file

ROOT = Path(__file__).resolve().parents[2]
MODELS = ('HAT', 'SEGSR')
CONFIGS = ('paper', 'demo')
MODES = ('fp32', 'bf16', 'bf16+compile', 'fp32-explicit')
OPTION_FILES = {
    ('HAT', 'paper'): 'options/train/HAT_SRx4_UCMerced.yml',
    ('SEGSR', 'paper'): 'options/train/SEGSR_SRx4_UCMerced.yml',
    ('HAT', 'demo'): 'options/train/demo_HAT_SRx4.yml',
    ('SEGSR', 'demo'): 'options/train/demo_SEGSR_SRx4.yml',
}


def check_device(parser: argparse.ArgumentParser, device: str) -> None:
    """Stop with one line, before any worker starts, when a CUDA device is asked for where none is visible."""
    if device.startswith('cuda') and not torch.cuda.is_available():
        parser.error(f'--device {device}: no CUDA GPU is visible here; run on a GPU machine or pass --device cpu')


def config_options(model: str, config: str) -> dict:
    """The whole option file of a (model, config)."""
    return load_option_file(ROOT / OPTION_FILES[(model, config)])


def network_options(model: str, config: str) -> dict:
    """``network_g`` of the config's option file; CLIP weights random (nothing is downloaded)."""
    network = config_options(model, config)['network_g']
    if model == 'SEGSR':
        network['sfem']['pretrained'] = None
        network['slm'].pop('text_init', None)
    return network


def build(model: str, config: str, mode: str, device: torch.device, seed: int = 0) -> torch.nn.Module:
    """The network of a (model, config), initialised from ``seed``, with the attention path ``mode`` asks for."""
    import segsr  # noqa: F401,I001  (patches basicsr and registers the archs before basicsr loads)
    from basicsr.archs import build_network

    torch.manual_seed(seed)
    net = build_network(network_options(model, config)).to(device)
    backbone = net.backbone if model == 'SEGSR' else net
    backbone.set_attn_impl('explicit' if mode == 'fp32-explicit' else 'sdpa')
    return net


def fresh_process_pool() -> ProcessPoolExecutor:
    """Runs each submitted job in a new spawned process, so compiled graphs and memory peaks are its own."""
    return ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context('spawn'), max_tasks_per_child=1)


def performance_for(mode: str, dynamic: bool | None = False):
    """The ``Performance`` settings of a benchmark mode: bf16 autocast and torch.compile as its name says."""
    from segsr.models.precision import Performance

    amp = torch.bfloat16 if mode.startswith('bf16') else None
    compile_opt = {'mode': 'default', 'dynamic': dynamic, 'fullgraph': False} if 'compile' in mode else None
    return Performance(train_amp=amp, eval_amp=amp, compile=compile_opt)


def _sync(device: torch.device) -> None:
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


def step_seconds(step, device: torch.device, iters: int) -> list[float]:
    """Wall time of each of ``iters`` calls of ``step``, with the device synchronised around each."""
    times = []
    for _ in range(iters):
        _sync(device)
        start = time.perf_counter()
        step()
        _sync(device)
        times.append(time.perf_counter() - start)
    return times


class PeakMemory:
    """Peak memory of one phase: CUDA allocator peak, or the growth of the CPU process's peak resident set."""

    def __init__(self, device: torch.device):
        self.device = device

    @staticmethod
    def _status_kib(field: str) -> int | None:
        try:
            for line in Path('/proc/self/status').read_text().splitlines():
                if line.startswith(field + ':'):
                    return int(line.split()[1])
        except OSError:
            return None
        return None

    def start(self) -> None:
        _sync(self.device)
        if self.device.type == 'cuda':
            torch.cuda.reset_peak_memory_stats(self.device)
            self.base = torch.cuda.memory_allocated(self.device)
            return
        try:  # writing 5 resets VmHWM to the current resident set (Linux >= 4.0)
            Path('/proc/self/clear_refs').write_text('5')
        except OSError:
            pass
        self.base = (self._status_kib('VmRSS') or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024

    def stop(self) -> int:
        _sync(self.device)
        if self.device.type == 'cuda':
            return torch.cuda.max_memory_allocated(self.device) - self.base
        peak = self._status_kib('VmHWM') or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak * 1024 - self.base


def count_flops(step, frozen: torch.nn.Module | None = None) -> int:
    """FLOPs of one call of ``step``; ``frozen``'s parameters stop requiring grad meanwhile.

    The module tracker inside FlopCounterMode fails on views of trainable parameters made under
    ``no_grad``, so inference is counted with the parameters frozen instead.
    """
    from torch.utils.flop_counter import FlopCounterMode

    params = [p for p in frozen.parameters() if p.requires_grad] if frozen is not None else []
    for param in params:
        param.requires_grad_(False)
    try:
        counter = FlopCounterMode(display=False)
        with counter:
            step()
    finally:
        for param in params:
            param.requires_grad_(True)
    return counter.get_total_flops()


def timed(step, device: torch.device, warmup: int, iters: int, count: bool,
          frozen: torch.nn.Module | None = None) -> dict:
    memory = PeakMemory(device)
    memory.start()
    flops = count_flops(step, frozen) if count else None
    for _ in range(warmup - (1 if count else 0)):
        step()
    times = step_seconds(step, device, iters)
    return {'seconds': statistics.median(times), 'times': times, 'peak_bytes': memory.stop(), 'flops': flops}


def device_name(device: str, threads: int | None) -> str:
    if device.startswith('cuda') and torch.cuda.is_available():
        return torch.cuda.get_device_name(torch.device(device))
    return f'{platform.processor() or platform.machine()} CPU, {threads or torch.get_num_threads()} threads'
