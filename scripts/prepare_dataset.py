"""Prepare a remote-sensing SR dataset: HR/, LR_x{s}/, splits/ and manifest.json from the downloaded archive.

Example: python scripts/prepare_dataset.py UCMerced --src UCMerced_LandUse.zip --out datasets/UCMerced
"""

import argparse
import os
import sys

import segsr  # noqa: F401  (patches basicsr before the preparation code imports it)
from segsr.data.prepare import DATASETS, prepare_dataset, summary_lines
from segsr.data.prepare.pipeline import DEFAULT_SCALES
from segsr.data.prepare.specs import SHIPPED_SEED
from segsr.utils.errors import SegSRError


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('name', choices=sorted(DATASETS), help='dataset to prepare')
    parser.add_argument('--src', required=True, help='the downloaded zip archive, or the folder it unpacks to')
    parser.add_argument('--out', help='output folder (default: datasets/<name>)')
    parser.add_argument('--scales', type=int, nargs='+', default=list(DEFAULT_SCALES), help='LR scales to make')
    parser.add_argument('--workers', type=int, default=os.cpu_count(), help='parallel processes (default: all cores)')
    parser.add_argument('--seed', type=int, default=SHIPPED_SEED,
                        help=f'split seed; {SHIPPED_SEED} reproduces the shipped lists')
    parser.add_argument('--keep-off-size', action='store_true',
                        help="keep off-size images at their own size instead of resizing them to the dataset's size")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """0 when every image is prepared, 1 when some failed (the rest is kept), 2 when nothing was done."""
    args = parse_args(argv)
    try:
        manifest = prepare_dataset(args.name, args.src, args.out or os.path.join('datasets', args.name),
                                   tuple(args.scales), args.workers, args.seed, args.keep_off_size)
    except SegSRError as err:
        print(f'error: {err}', file=sys.stderr)
        return 2
    print('\n'.join(summary_lines(manifest)))
    failed = manifest['counts']['failed']
    if failed:
        print(f'error: {failed} of {failed + manifest["counts"]["images"]} source images failed (listed above as '
              'FAILED); the others are prepared: replace or remove the failed files and run again', file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
