"""Build the demo dataset under datasets/demo from the photographs that scikit-image ships.

    python scripts/make_demo_data.py [--out datasets/demo]
    python scripts/make_demo_data.py --rasters [--out datasets/raster_demo]   # 4-band uint16 rasters
"""

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from segsr.data.demo import build_demo_dataset, build_raster_demo  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--out', help='output folder (default: datasets/demo, or datasets/raster_demo)')
    parser.add_argument('--rasters', action='store_true', help='4-band uint16 GeoTIFFs and disjoint splits instead')
    args = parser.parse_args()
    if args.rasters:
        out = args.out or str(ROOT / 'datasets' / 'raster_demo')
        counts = build_raster_demo(out)
        print(f'raster demo in {out}: {counts["train"]} train blocks, {counts["val"]} val and {counts["test"]} test '
              'windows')
        return
    args.out = args.out or str(ROOT / 'datasets' / 'demo')
    counts = build_demo_dataset(args.out)
    print(f'demo dataset in {args.out}: ' + ', '.join(f'{count} {split} images' for split, count in counts.items()))


if __name__ == '__main__':
    main()
