"""Build the demo dataset under datasets/demo from the photographs that scikit-image ships.

    python scripts/make_demo_data.py [--out datasets/demo]
"""

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from segsr.data.demo import build_demo_dataset  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--out', default=str(ROOT / 'datasets' / 'demo'), help='output folder')
    args = parser.parse_args()
    counts = build_demo_dataset(args.out)
    print(f'demo dataset in {args.out}: ' + ', '.join(f'{count} {split} images' for split, count in counts.items()))


if __name__ == '__main__':
    main()
