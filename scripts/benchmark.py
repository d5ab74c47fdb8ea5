"""Training and inference speed, peak memory, parameters, FLOPs and MFU of HAT and SEGSR.

Every (model, config, mode) runs in a fresh process so that compiled graphs and memory peaks are
its own. Modes: ``fp32`` (eager, SDPA attention), ``bf16`` (autocast), ``bf16+compile``
(autocast and torch.compile) and ``fp32-explicit`` (eager with HAT's explicit-softmax reference
attention). Configs come from the option files: ``paper`` (HAT / SEGSR UCMerced x4, batch 4,
LR 64, a ViT-B-16 CLIP with random weights) and ``demo`` (the CPU demo networks).

    python scripts/benchmark.py --device cuda --json benchmark_cuda.json
    python scripts/benchmark.py --device cpu --quick --json benchmark_cpu.json

Peak memory: on CUDA ``torch.cuda.max_memory_allocated`` of the phase; on CPU the growth of the
process's peak resident set (VmHWM, reset before each phase) over its resident set before it.
FLOPs: ``torch.utils.flop_counter`` on the first step of an eager mode (the explicit path counts
attention as plain matmuls everywhere). MFU: training FLOPs per second over ``--peak-tflops``.
"""

import argparse
import json
import os
import sys
import time
from pathlib import Path

if __name__ == '__main__':  # run as a script: the project, not scripts/, comes first
    sys.path[0] = str(Path(__file__).resolve().parents[1])

import torch  # noqa: E402
from tqdm import tqdm  # noqa: E402

from segsr.benchmarking.harness import (  # noqa: E402
    CONFIGS,
    MODELS,
    MODES,
    build,
    check_device,
    device_name,
    fresh_process_pool,
    performance_for,
    timed,
)

# Dense bf16 tensor-core peaks (TFLOP/s) from NVIDIA's data sheets, matched against the device name.
BF16_PEAK_TFLOPS = (('H100 PCIe', 756.0), ('H100 NVL', 835.0), ('H100', 989.4), ('H200', 989.4), ('A100', 312.0))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    parser.add_argument('--models', nargs='+', default=list(MODELS), choices=MODELS)
    parser.add_argument('--configs', nargs='+', default=list(CONFIGS), choices=CONFIGS)
    parser.add_argument('--modes', nargs='+', default=list(MODES), choices=MODES)
    parser.add_argument('--batch', type=int, default=4, help='training batch (paper: 4)')
    parser.add_argument('--train-size', type=int, default=64, help='LR training patch side (paper: 64)')
    parser.add_argument('--infer-sizes', type=int, nargs='+', default=[64, 256], help='LR sides for inference')
    parser.add_argument('--warmup', type=int, default=3, help='untimed steps first (compiling happens here)')
    parser.add_argument('--iters', type=int, default=10, help='timed steps; the median is reported')
    parser.add_argument('--dynamic', choices=('auto', 'true', 'false'), default='false',
                        help='torch.compile dynamic shapes (false: one static graph per padded size, as in training)')
    parser.add_argument('--peak-tflops', type=float, default=None,
                        help='bf16 peak of the device for the MFU column (default: known H100/H200/A100 peaks)')
    parser.add_argument('--threads', type=int, default=None, help='torch CPU threads (default: torch default)')
    parser.add_argument('--quick', action='store_true',
                        help='CPU-sized run: batch 1, LR 32 training, inference at 32 and 64, 1 warm-up, 3 timed')
    parser.add_argument('--json', default=None, help='write the results here as JSON')
    args = parser.parse_args(argv)
    check_device(parser, args.device)
    if args.quick:
        args.batch, args.train_size, args.infer_sizes, args.warmup, args.iters = 1, 32, [32, 64], 1, 3
    return args


def run_job(model: str, config: str, mode: str, args: argparse.Namespace) -> dict:
    """All phases of one (model, config, mode) in this process: training, then inference per size."""
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    perf = performance_for(mode, {'auto': None, 'true': True, 'false': False}[args.dynamic])
    net = build(model, config, mode, device)
    params = sum(p.numel() for p in net.parameters())
    trainable = sum(p.numel() for p in net.parameters() if p.requires_grad)
    perf.prepare_network(net)
    count = 'compile' not in mode
    result = {'model': model, 'config': config, 'mode': mode, 'params': params, 'trainable': trainable}

    scale = net.network_info.scale
    generator = torch.Generator().manual_seed(0)
    lq = torch.rand(args.batch, 3, args.train_size, args.train_size, generator=generator).to(device)
    gt = torch.rand(args.batch, 3, args.train_size * scale, args.train_size * scale, generator=generator).to(device)
    optimizer = torch.optim.Adam([p for p in net.parameters() if p.requires_grad], lr=1e-4)

    def train_step() -> None:
        perf.train_step(net, optimizer, lq, lambda out: {'l1': torch.nn.functional.l1_loss(out, gt)})

    net.train()
    result['train'] = timed(train_step, device, args.warmup, args.iters, count)
    result['train']['batch'], result['train']['size'] = args.batch, args.train_size
    net.eval()
    result['infer'] = {}
    for size in args.infer_sizes:
        image = torch.rand(1, 3, size, size, generator=generator).to(device)

        def infer_step(image=image) -> None:
            with torch.no_grad(), perf.autocast(image, training=False):
                net(image)

        result['infer'][size] = timed(infer_step, device, args.warmup, args.iters, count, frozen=net)
    return result


def default_peak_tflops(device: str) -> float | None:
    if not device.startswith('cuda') or not torch.cuda.is_available():
        return None
    name = torch.cuda.get_device_name(torch.device(device))
    return next((peak for key, peak in BF16_PEAK_TFLOPS if key in name), None)


def reference_flops(results: list[dict], model: str, config: str, phase: str) -> int | None:
    """FLOPs of a phase from the explicit path if it ran, else from any eager mode."""
    rows = [r for r in results if r['model'] == model and r['config'] == config]
    rows.sort(key=lambda r: r['mode'] != 'fp32-explicit')
    for row in rows:
        entry = row['train'] if phase == 'train' else row['infer'][phase]
        if entry['flops']:
            return entry['flops']
    return None


def table(results: list[dict], args: argparse.Namespace, peak_tflops: float | None) -> str:
    mib = 2**20
    sizes = args.infer_sizes
    header = (f'{"model":<6} {"config":<6} {"mode":<14} {"train it/s":>10} {"train MiB":>10} '
              + ''.join(f'{f"img/s@{s}":>10} {f"MiB@{s}":>9} ' for s in sizes)
              + f'{"params M":>9} {"train M":>8} {"GFLOP/step":>11} {"MFU %":>6}')
    lines = [header, '-' * len(header)]
    for r in results:
        flops = reference_flops(results, r['model'], r['config'], 'train')
        rate = 1 / r['train']['seconds']
        mfu = f'{100 * flops * rate / (peak_tflops * 1e12):>6.2f}' if flops and peak_tflops else f'{"-":>6}'
        infer = ''.join(f'{1 / r["infer"][s]["seconds"]:>10.3f} {r["infer"][s]["peak_bytes"] / mib:>9.0f} '
                        for s in sizes)
        gflop = f'{flops / 1e9:>11.1f}' if flops else f'{"-":>11}'
        lines.append(f'{r["model"]:<6} {r["config"]:<6} {r["mode"]:<14} {rate:>10.3f} '
                     f'{r["train"]["peak_bytes"] / mib:>10.0f} {infer}{r["params"] / 1e6:>9.2f} '
                     f'{r["trainable"] / 1e6:>8.2f} {gflop} {mfu}')
    return '\n'.join(lines)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    peak_tflops = args.peak_tflops or default_peak_tflops(args.device)
    load_before = os.getloadavg()
    jobs = [(m, c, mode) for m in args.models for c in args.configs for mode in args.modes]
    results = []
    started = time.time()
    with fresh_process_pool() as pool:
        for job in (bar := tqdm(jobs, desc='benchmark', unit='run')):
            results.append(pool.submit(run_job, *job, args).result())
            row = results[-1]
            bar.write(f'{" ".join(job)}: train {1 / row["train"]["seconds"]:.3f} it/s, inference '
                      + ', '.join(f'{1 / v["seconds"]:.3f} img/s @{k}' for k, v in row['infer'].items()))
    elapsed = time.time() - started

    print(f'\ndevice {device_name(args.device, args.threads)}; torch {torch.__version__}; '
          f'training batch {args.batch} at LR {args.train_size}x{args.train_size} x4 with Adam; '
          f'inference batch 1 at LR {args.infer_sizes}; '
          f'median of {args.iters} timed steps after {args.warmup} warm-up; load average before '
          f'{load_before[0]:.2f}, after {os.getloadavg()[0]:.2f}; {elapsed:.0f} s')
    print(table(results, args, peak_tflops))
    if peak_tflops is None:
        print('MFU needs --peak-tflops (the device bf16 peak) on this device')
    if args.json:
        report = {'args': vars(args), 'device': device_name(args.device, args.threads), 'torch': torch.__version__,
                  'python': sys.version.split()[0], 'peak_tflops': peak_tflops, 'load_average_before': load_before,
                  'load_average_after': os.getloadavg(), 'seconds': elapsed, 'results': results}
        from segsr.utils.files import atomic_write_bytes

        atomic_write_bytes(args.json, json.dumps(report, indent=2).encode())


if __name__ == '__main__':
    main()
