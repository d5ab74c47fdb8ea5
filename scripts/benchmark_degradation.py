"""Time of each training degradation per batch, against bicubic, on one device.

    python scripts/benchmark_degradation.py --device cpu --batch 8 --size 64 [--iters 20] [--json out.json]

Pipelines: ``bicubic`` (segsr's MATLAB bicubic on the batch), ``realesrgan`` (Real-ESRGAN's high-order
pipeline with HAT's Real-HAT settings, kernels drawn per batch of 21 pixels (7 where the LR crop is smaller),
pair pool of 4 batches),
``sensor`` (PSF at an MTF drawn from [0.2, 0.35], shot + read noise, band shifts, 12 bits) and
``bicubic+sensor``. Each is warmed up, then timed over ``--iters`` batches of random HR images (3 bands, values
in [0, 1]); on CUDA the device is synchronised around the timed loop. Prints one line per pipeline.
"""

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

import segsr  # noqa: E402,F401  (basicsr compat)
from segsr.degradations.chain import DegradationChain  # noqa: E402

SENSOR = {'mtf': [[0.2, 0.35]], 'snr': 50, 'reference': 0.5, 'read_fraction': 0.3, 'shift_range': 0.15, 'bits': 12}
PIPELINES = {
    'bicubic': {'degradation': 'bicubic'},
    'realesrgan': {'degradation': 'realesrgan'},
    'sensor': {'degradation': 'sensor', 'sensor': SENSOR},
    'bicubic+sensor': {'degradation': ['bicubic', 'sensor'], 'sensor': SENSOR},
}
WARMUP = 3


def synchronise(device: torch.device) -> None:
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


def time_pipeline(dataset: dict, batch: int, size: int, iters: int, device: torch.device) -> float:
    """Seconds per batch of ``chain.degrade``."""
    kernel = 21 if size // 4 >= 21 else 7
    dataset = {'gt_size': size, 'blur_kernel_size': kernel, 'blur_kernel_size2': kernel, **dataset}
    chain = DegradationChain({'scale': 4, 'queue_size': 4 * batch}, dataset, device)
    generator = torch.Generator(device).manual_seed(0)
    images = [torch.rand(batch, 3, size, size, generator=generator, device=device) for _ in range(4)]
    for step in range(WARMUP):
        chain.degrade(images[step % 4])
    synchronise(device)
    start = time.perf_counter()
    for step in range(iters):
        chain.degrade(images[step % 4])
    synchronise(device)
    return (time.perf_counter() - start) / iters


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--batch', type=int, default=8)
    parser.add_argument('--size', type=int, default=64, help='HR crop size (a multiple of 4)')
    parser.add_argument('--iters', type=int, default=20)
    parser.add_argument('--json', default=None, help='also write the numbers here')
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    device = torch.device(args.device)
    rows = []
    for name, dataset in PIPELINES.items():
        seconds = time_pipeline(dataset, args.batch, args.size, args.iters, device)
        rows.append({'pipeline': name, 'ms_per_batch': 1000 * seconds})
    bicubic = rows[0]['ms_per_batch']
    print(f'device {device}, batch {args.batch} x 3 x {args.size} x {args.size}, {args.iters} batches, '
          f'torch {torch.__version__}, {torch.get_num_threads()} threads')
    for row in rows:
        row['vs_bicubic'] = row['ms_per_batch'] / bicubic
        print(f'{row["pipeline"]:>15}: {row["ms_per_batch"]:8.2f} ms/batch  ({row["vs_bicubic"]:.1f} x bicubic)')
    if args.json:
        Path(args.json).write_text(json.dumps({'device': str(device), **vars(args), 'rows': rows}, indent=2))


if __name__ == '__main__':
    main()
