"""Super-resolve images, folders and GeoTIFFs of any size with a trained checkpoint.

    python segsr/infer.py --weights net_g.pth --input scene.tif --output results/
"""

import argparse
import sys
from pathlib import Path

if __name__ == '__main__':
    sys.path[0] = str(Path(__file__).resolve().parents[1])

import segsr  # noqa: E402,F401  (basicsr compat and arch registration first)
from segsr.inference.checkpoint import load_network  # noqa: E402
from segsr.inference.engine import TileUpscaler, resolve_device  # noqa: E402
from segsr.inference.runner import RadiometryOptions, TilingOptions, collect_inputs, upscale_files  # noqa: E402
from segsr.utils.errors import SegSRError  # noqa: E402


def band_list(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in text.split(','))
    except ValueError:
        raise argparse.ArgumentTypeError(f'expected comma-separated band numbers like 4,3,2, got {text!r}') from None


def percentile_pair(text: str) -> tuple[float, float]:
    try:
        low, high = (float(part) for part in text.split(','))
    except ValueError:
        raise argparse.ArgumentTypeError(f'expected two percentiles like 0.5,99.5, got {text!r}') from None
    if not 0 <= low < high <= 100:
        raise argparse.ArgumentTypeError(f'percentiles must satisfy 0 <= low < high <= 100, got {text!r}')
    return low, high


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--weights', required=True, help='checkpoint (.pth) with params_ema/params and network_g')
    parser.add_argument('--opt', help='options YAML whose network_g builds the network (overrides the checkpoint)')
    parser.add_argument('--input', required=True, help='image file, folder of images, or glob (quote it)')
    parser.add_argument('--output', required=True, help='folder for the results (same file names as the inputs)')
    parser.add_argument('--tile', type=int, default=256, help='LR pixels per tile side written by one network call')
    parser.add_argument(
        '--overlap',
        type=int,
        default=32,
        help='LR pixels each tile shares (blended) with the next; half that is extra context',
    )
    parser.add_argument('--batch', type=int, default=1, help='tiles per network call')
    parser.add_argument('--bf16', action='store_true', help='bfloat16 autocast (GPU; also allowed on CPU)')
    parser.add_argument('--save-guidance', action='store_true', help='also write guidance maps (SEGSR networks)')
    parser.add_argument('--bands', type=band_list, help='1-based bands to use, in network channel order, e.g. 4,3,2')
    parser.add_argument(
        '--stretch',
        choices=('auto', 'range', 'percentile'),
        default='auto',
        help='value mapping into [0, 1]: auto = range for 8-bit, percentile otherwise',
    )
    parser.add_argument('--percentiles', type=percentile_pair, default=(0.5, 99.5), help='low,high for percentile')
    parser.add_argument('--device', help='cpu or cuda (default: cuda when available)')
    return parser


def validate(args: argparse.Namespace) -> None:
    if args.tile < 1 or args.batch < 1:
        raise SegSRError(f'--tile ({args.tile}) and --batch ({args.batch}) must be positive')
    if not 0 <= args.overlap <= args.tile:
        raise SegSRError(f'--overlap {args.overlap} must lie between 0 and --tile {args.tile}')


def run(args: argparse.Namespace) -> list[Path]:
    validate(args)
    inputs = collect_inputs(args.input)
    network, _ = load_network(args.weights, args.opt)
    upscaler = TileUpscaler(network, resolve_device(args.device), bf16=args.bf16, guidance=args.save_guidance)
    tiling = TilingOptions(tile=args.tile, overlap=args.overlap, batch=args.batch)
    radiometry = RadiometryOptions(bands=args.bands, stretch=args.stretch, percentiles=args.percentiles)
    return upscale_files(inputs, Path(args.output), upscaler, tiling, radiometry, guidance=args.save_guidance)


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    try:
        for path in run(args):
            print(path)
    except SegSRError as error:
        sys.exit(f'error: {error}')


if __name__ == '__main__':
    main()
