"""How long the check of a dataset's files takes before a run: headers and sizes of every listed file.

Writes a paired set (HR and LR_x4, so twice --images files) into a temporary folder, builds it as
training and as validation data the way train.py does, and prints the seconds of each check. The files
were just written, so they are in the page cache: on a cold network disk the check waits on I/O instead.

    python scripts/benchmark_data_check.py                       # 10000 PNG pairs of 128x128
    python scripts/benchmark_data_check.py --images 2000 --format jpg --size 256
"""

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path[0] = str(Path(__file__).resolve().parents[1])

import cv2  # noqa: E402
import numpy as np  # noqa: E402

import segsr  # noqa: E402,F401  (basicsr compat and registration)
from segsr.data.loaders import build_checked_dataset  # noqa: E402

SCALE = 4


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--images', type=int, default=10000, help='HR images (each with its LR_x4)')
    parser.add_argument('--size', type=int, default=128, help='HR side in pixels (a multiple of 4)')
    parser.add_argument('--format', choices=('png', 'jpg'), default='png')
    return parser.parse_args(argv)


def write_set(root: Path, count: int, size: int, ext: str) -> None:
    """Smooth textured images (realistic file sizes for their format), varied by a per-image offset."""
    y, x = np.mgrid[0:size, 0:size]
    base = 128 + 60 * np.sin(x / 7.0) * np.cos(y / 5.0)
    rng = np.random.default_rng(0)
    for folder in ('HR', 'LR'):
        (root / folder).mkdir()
    for index in range(count):
        hr = np.clip(base[..., None] + rng.normal(index % 50, 8, (size, size, 3)), 0, 255).astype(np.uint8)
        cv2.imwrite(str(root / 'HR' / f'{index:05d}.{ext}'), hr)
        cv2.imwrite(str(root / 'LR' / f'{index:05d}.{ext}'), cv2.resize(hr, (size // SCALE, size // SCALE)))


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        start = time.perf_counter()
        write_set(root, args.images, args.size, args.format)
        print(f'wrote {args.images} {args.format.upper()} pairs ({args.size}x{args.size} HR, '
              f'{args.size // SCALE}x{args.size // SCALE} LR) in {time.perf_counter() - start:.1f} s')
        for phase in ('train', 'val'):
            dataset_opt = {'name': phase, 'type': 'RSPairedImageDataset', 'phase': phase, 'scale': SCALE,
                           'gt_size': args.size, 'dataroot_gt': str(root / 'HR'), 'dataroot_lq': str(root / 'LR'),
                           'io_backend': {'type': 'disk'}, 'use_hflip': True, 'use_rot': True}
            start = time.perf_counter()
            checked = build_checked_dataset(dataset_opt, phase)
            total = time.perf_counter() - start
            print(f'{phase}: {checked.check.files} files checked in {checked.check.seconds:.2f} s '
                  f'({1e6 * checked.check.seconds / checked.check.files:.0f} us per file); '
                  f'building the dataset with its check took {total:.2f} s')


if __name__ == '__main__':
    main()
