"""HAT x4 on one whole image (LR 480x640 by default): seconds per image and peak memory per precision mode.

traiNNer-redux publishes one figure for this job, HAT-L x4 at 480x640 on an RTX 4090: 3.45 s per image and
10.41 GB. ``large`` is HAT-L (12 groups of 6 blocks), ``paper`` the HAT of the UCMerced option file, ``small``
a HAT-S-like network for CPU dry runs. Each (config, mode) runs in a fresh process, so compiled graphs and
memory peaks are its own; the first calls (compilation included) are warm-up and not timed.

    python scripts/benchmark_hat_image.py --device cuda --configs large paper --json hat_image.json
    python scripts/benchmark_hat_image.py --device cpu --configs small --height 16 --width 24 --modes fp32 bf16
"""

import argparse
import json
import statistics
import sys
from pathlib import Path

if __name__ == '__main__':  # run as a script: the project, not scripts/, comes first
    sys.path[0] = str(Path(__file__).resolve().parents[1])

import torch  # noqa: E402
from tqdm import tqdm  # noqa: E402

from segsr.benchmarking.harness import (  # noqa: E402
    PeakMemory,
    check_device,
    device_name,
    fresh_process_pool,
    network_options,
    performance_for,
    step_seconds,
)

ANCHOR = {'network': 'HAT-L x4', 'height': 480, 'width': 640, 'seconds': 3.45, 'peak_gb': 10.41,
          'device': 'RTX 4090', 'source': 'traiNNer-redux'}
HAT_COMMON = dict(upscale=4, img_size=64, compress_ratio=3, squeeze_factor=30, conv_scale=0.01, overlap_ratio=0.5,
                  mlp_ratio=2, upsampler='pixelshuffle', resi_connection='1conv')
LARGE = dict(HAT_COMMON, embed_dim=180, depths=(6,) * 12, num_heads=(6,) * 12, window_size=16)
SMALL = dict(HAT_COMMON, embed_dim=24, depths=(2, 2), num_heads=(2, 2), window_size=8, squeeze_factor=8)
CONFIGS = ('large', 'paper', 'small')
MODES = ('fp32', 'bf16', 'bf16+compile')


def hat_options(config: str) -> dict:
    if config == 'paper':
        options = network_options('HAT', 'paper')
        options.pop('type')
        return options
    return dict(LARGE if config == 'large' else SMALL)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    parser.add_argument('--configs', nargs='+', default=['large', 'paper'], choices=CONFIGS)
    parser.add_argument('--modes', nargs='+', default=list(MODES), choices=MODES)
    parser.add_argument('--height', type=int, default=ANCHOR['height'], help='LR height (anchor: 480)')
    parser.add_argument('--width', type=int, default=ANCHOR['width'], help='LR width (anchor: 640)')
    parser.add_argument('--warmup', type=int, default=2, help='untimed calls first (compiling happens here)')
    parser.add_argument('--repeats', type=int, default=3, help='timed calls; the median is reported')
    parser.add_argument('--threads', type=int, default=None, help='torch CPU threads (default: torch default)')
    parser.add_argument('--json', default=None, help='write the results here as JSON')
    args = parser.parse_args(argv)
    check_device(parser, args.device)
    if min(args.height, args.width, args.warmup + 1, args.repeats) < 1:
        parser.error('--height, --width and --repeats must be positive and --warmup not negative')
    return args


def measure(config: str, mode: str, args: argparse.Namespace) -> dict:
    """One whole-image forward pass of a (config, mode), in the worker process."""
    import segsr  # noqa: F401  (registers HAT and patches basicsr; imported in the worker process)
    from segsr.archs.hat_arch import HAT

    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    torch.manual_seed(0)
    network = HAT(**hat_options(config)).to(device).eval()
    performance = performance_for(mode, dynamic=False)
    performance.prepare_network(network)
    image = torch.rand(1, 3, args.height, args.width, device=device)

    def step() -> None:
        with torch.no_grad(), performance.autocast(image, training=False):
            network(image)

    memory = PeakMemory(device)
    memory.start()
    for _ in range(args.warmup):
        step()
    times = step_seconds(step, device, args.repeats)
    return {'config': config, 'mode': mode, 'params': sum(p.numel() for p in network.parameters()),
            'seconds': statistics.median(times), 'times': times, 'peak_bytes': memory.stop()}


def table(results: list[dict], args: argparse.Namespace) -> str:
    header = f'{"config":<7} {"mode":<13} {"params M":>9} {"s/image":>9} {"peak GB":>9}'
    lines = [header, '-' * len(header)]
    lines += [f'{r["config"]:<7} {r["mode"]:<13} {r["params"] / 1e6:>9.2f} {r["seconds"]:>9.3f} '
              f'{r["peak_bytes"] / 1e9:>9.2f}' for r in results]
    anchor = ANCHOR
    lines.append(f'anchor: {anchor["network"]} at {anchor["height"]}x{anchor["width"]} on {anchor["device"]} '
                 f'({anchor["source"]}): {anchor["seconds"]} s/image, {anchor["peak_gb"]} GB')
    return '\n'.join(lines)


def main(argv: list[str] | None = None) -> list[dict]:
    args = parse_args(argv)
    jobs = [(config, mode) for config in args.configs for mode in args.modes]
    results = []
    with fresh_process_pool() as pool:
        for job in tqdm(jobs, desc='HAT whole image', unit='run'):
            results.append(pool.submit(measure, *job, args).result())
    memory = 'torch.cuda.max_memory_allocated' if args.device.startswith('cuda') else 'peak resident set growth'
    print(f'\nHAT x4 on LR {args.height}x{args.width}, batch 1, {device_name(args.device, args.threads)}, torch '
          f'{torch.__version__}; median of {args.repeats} after {args.warmup} warm-up; peak memory = {memory}')
    print(table(results, args))
    if args.json:
        from segsr.utils.files import atomic_write_bytes

        report = {'args': vars(args), 'device': device_name(args.device, args.threads), 'torch': torch.__version__,
                  'anchor': ANCHOR, 'results': results}
        atomic_write_bytes(args.json, json.dumps(report, indent=2).encode())
    return results


if __name__ == '__main__':
    main()
