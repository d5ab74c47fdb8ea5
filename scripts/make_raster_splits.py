"""Cut rasters into blocks and write spatially disjoint train/val/test lists for RasterDataset.

    python scripts/make_raster_splits.py datasets/scenes --out datasets/scenes/splits --block 256 --gap 64 \\
        --window 64 --scale 4

train.txt lists blocks (training draws its crops inside them); val.txt and test.txt list fixed windows.
See docs/rasters.md.
"""

import argparse
import sys
from pathlib import Path

if __package__ in (None, ''):
    sys.path[0] = str(Path(__file__).resolve().parents[1])

from segsr.data.raster_splits import SplitPlan, make_raster_splits  # noqa: E402
from segsr.utils.errors import SegSRError  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('source', help='folder, glob or list file of HR rasters')
    parser.add_argument('--out', required=True, help='folder for train.txt, val.txt and test.txt')
    parser.add_argument('--block', type=int, default=256, help='block side in HR pixels')
    parser.add_argument('--gap', type=int, help='unused HR pixels between blocks (default: one window)')
    parser.add_argument('--window', type=int, default=64, help='side of the val/test windows in HR pixels')
    parser.add_argument('--fractions', type=float, nargs=3, default=(0.8, 0.1, 0.1), metavar=('TRAIN', 'VAL', 'TEST'))
    parser.add_argument('--scale', type=int, default=4, help='every offset and size is a multiple of it')
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args(argv)
    plan = SplitPlan(args.block, args.window if args.gap is None else args.gap, args.window,
                     tuple(args.fractions), args.seed, args.scale)
    try:
        counts = make_raster_splits(args.source, args.out, plan)
    except SegSRError as error:
        sys.exit(f'error: {error}')
    print(f'{args.out}: {counts["train"]} train blocks, {counts["val"]} val and {counts["test"]} test windows')
    return 0


if __name__ == '__main__':
    sys.exit(main())
