"""Wald-protocol training pairs for the Sentinel-2 reference network, from products as they come.

    python scripts/make_s2_wald_pairs.py PRODUCT_OR_FOLDER [...] --out datasets/s2_wald/train [--mtf 0.3]
    python scripts/make_s2_wald_pairs.py --demo datasets/s2_demo     # demo products from scikit-image photos

Each product (a ``.SAFE`` folder or its ``.zip``; a folder is searched for them) gives ``OUT/hr/<product>.tif``
and ``OUT/lr/<product>.tif`` on its 20 m grid, in reflectance: the bands B04, B03, B02, B08 degraded to 20 m,
then B05, B06, B07, B8A, B11, B12 as the product holds them (HR) or degraded to 40 m and brought back by
bicubic (LR). A product that cannot be read is named in one line and the others go on; the exit status is
then non-zero. ``--demo`` writes demo L2A products under ``DIR/train`` and ``DIR/val`` and their pairs under
``DIR/wald/train`` and ``DIR/wald/val``. See segsr.data.s2_wald and docs/sentinel2.md.
"""

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tqdm import tqdm  # noqa: E402

import segsr  # noqa: E402,F401  (basicsr compat)
from segsr.data.demo_products import build_s2_demo_products  # noqa: E402
from segsr.data.s2_wald import WALD_MTF, write_wald_pairs  # noqa: E402
from segsr.sentinel2.product import is_product  # noqa: E402
from segsr.utils.errors import SegSRError  # noqa: E402


def find_products(sources: list[str]) -> list[Path]:
    found = []
    for source in map(Path, sources):
        if is_product(source):
            found.append(source)
        elif source.is_dir():
            found += sorted(path for path in source.iterdir() if is_product(path))
        else:
            raise SegSRError(f'{source} is neither a Sentinel-2 product (.SAFE, .SAFE.zip) nor a folder of them')
    if not found:
        raise SegSRError(f'no Sentinel-2 products in {", ".join(sources)}; give .SAFE folders or their zips')
    return found


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('products', nargs='*', help='.SAFE folders, .SAFE.zip files or folders of them')
    parser.add_argument('--out', help='folder for hr/ and lr/')
    parser.add_argument('--mtf', type=float, default=WALD_MTF, help='MTF of the degradation at the coarse Nyquist')
    parser.add_argument('--demo', metavar='DIR', help='write demo products from scikit-image photos, and their pairs')
    args = parser.parse_args(argv)
    try:
        if args.demo:
            if Path(args.demo).exists():
                raise SegSRError(f'{args.demo} already exists; give a new folder for the demo products')
            demo = Path(args.demo)
            for split, products in build_s2_demo_products(demo).items():
                write_wald_pairs(products, demo / 'wald' / split, args.mtf)
            print(f'demo products and their Wald pairs in {demo}')
            return
        if not args.products or not args.out:
            raise SegSRError('give products and --out, or --demo DIR')
        products = find_products(args.products)
    except SegSRError as err:
        sys.exit(f'error: {err}')
    failed = []
    for product in tqdm(products, desc='Wald pairs', unit='product'):
        try:
            write_wald_pairs([product], Path(args.out), args.mtf)
        except SegSRError as err:  # one bad product is named; the others still get their pairs
            failed.append(product)
            print(f'error: {err}', file=sys.stderr)
    print(f'{len(products) - len(failed)} pairs in {args.out}/hr and {args.out}/lr')
    if failed:
        sys.exit(f'error: {len(failed)} of {len(products)} products failed (named above); fix or remove them')


if __name__ == '__main__':
    main()
