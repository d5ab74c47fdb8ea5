"""Super-resolve images, folders and GeoTIFFs of any size with a trained checkpoint.

    python segsr/infer.py --weights net_g.pth --input scene.tif --output results/
    python segsr/infer.py --onnx model.onnx --input scene.tif --output results/   # onnxruntime on the CPU
"""

import argparse
import signal
import sys
from pathlib import Path

if __name__ == '__main__':
    sys.path[0] = str(Path(__file__).resolve().parents[1])

import segsr  # noqa: E402  (basicsr compat and arch registration first)
from segsr.inference.bands import EACH_BAND  # noqa: E402
from segsr.inference.checkpoint import load_network  # noqa: E402
from segsr.inference.engine import TileUpscaler, resolve_device  # noqa: E402
from segsr.inference.geotiff import TiffFormat  # noqa: E402
from segsr.inference.inputs import InputFile, check_input, check_writable, collect_inputs, plan_input  # noqa: E402
from segsr.inference.onnx_runner import OnnxTileUpscaler  # noqa: E402
from segsr.inference.runner import (  # noqa: E402
    FILE_ERRORS,
    RadiometryOptions,
    RunReport,
    TilingOptions,
    one_line,
    upscale_files,
)
from segsr.self_ensemble import with_self_ensemble  # noqa: E402
from segsr.utils.errors import SegSRError  # noqa: E402

COMPRESSIONS = ('deflate', 'lzw', 'zstd', 'lzma', 'packbits', 'none')


def band_group(text: str) -> tuple[int, ...] | str:
    if text == EACH_BAND:
        return text
    try:
        return tuple(int(part) for part in text.split(','))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f'expected comma-separated band numbers like 4,3,2 (or "each"), got {text!r}'
        ) from None


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
    network = parser.add_mutually_exclusive_group(required=True)
    network.add_argument('--weights', help='checkpoint (.pth) with params_ema/params and network_g')
    network.add_argument('--onnx', help='graph written by segsr-export, run with onnxruntime on the CPU')
    parser.add_argument('--opt', help='options YAML whose network_g builds the network (overrides the checkpoint)')
    parser.add_argument('--input', required=True, help='image, raster (GeoTIFF, VRT, /vsizip/...), folder or glob')
    parser.add_argument('--recursive', action='store_true', help='also search subfolders; the output mirrors them')
    parser.add_argument('--output', required=True, help='folder for the results (same file names as the inputs)')
    parser.add_argument('--overwrite', action='store_true', help='replace outputs that already exist')
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
    parser.add_argument('--self-ensemble', action='store_true',
                        help='mean over the 8 flips and rotations of each tile (8 network calls per tile)')
    parser.add_argument(
        '--bands',
        type=band_group,
        nargs='+',
        help='1-based band groups, each in network channel order (e.g. 3,2,1 4,5,7), or "each" for every band '
        'on its own; the output holds the bands in the input order',
    )
    parser.add_argument(
        '--stretch',
        choices=('auto', 'range', 'percentile'),
        default='auto',
        help='affine map to the network range, inverted exactly: auto = range for 8-bit, percentile otherwise',
    )
    parser.add_argument('--percentiles', type=percentile_pair, default=(0.5, 99.5), help='low,high for percentile')
    parser.add_argument(
        '--allow-categorical', action='store_true', help='run on class rasters (colour table, thematic) anyway'
    )
    parser.add_argument('--cog', action='store_true', help='write Cloud-Optimized GeoTIFFs with overviews')
    parser.add_argument('--compress', choices=COMPRESSIONS, default='deflate', help='TIFF compression')
    parser.add_argument('--blocksize', type=int, help='TIFF block side, a multiple of 16 (default: fits the tile)')
    parser.add_argument('--device', help='cpu or cuda (default: cuda when available)')
    return parser


def band_request(groups: list | None) -> tuple[tuple[int, ...], ...] | str | None:
    if groups is None:
        return None
    if EACH_BAND in groups:
        if len(groups) > 1:
            raise SegSRError('--bands each stands alone: drop the other band groups')
        return EACH_BAND
    return tuple(groups)


def validate(args: argparse.Namespace) -> None:
    if args.tile < 1 or args.batch < 1:
        raise SegSRError(f'--tile ({args.tile}) and --batch ({args.batch}) must be positive')
    if not 0 <= args.overlap <= args.tile:
        raise SegSRError(f'--overlap {args.overlap} must lie between 0 and --tile {args.tile}')
    if args.blocksize is not None and (args.blocksize < 16 or args.blocksize % 16):
        raise SegSRError(f'--blocksize {args.blocksize} must be a positive multiple of 16, e.g. 256 or 512')
    if args.onnx:
        torch_only = [flag for flag, given in (('--opt', args.opt), ('--bf16', args.bf16),
                                               ('--save-guidance', args.save_guidance),
                                               ('--device', args.device not in (None, 'cpu'))) if given]
        if torch_only:
            raise SegSRError(f'{", ".join(torch_only)} apply to --weights only; drop them with --onnx')


def plan_inputs(args: argparse.Namespace, radiometry: RadiometryOptions, report: RunReport) -> list[InputFile]:
    """Every input checked before the model loads; the ones that fail are reported, not run."""
    output = Path(args.output)
    check_writable(output)
    planned, taken = [], set()
    for source, folder in collect_inputs(args.input, args.recursive, output):
        item = plan_input(source, output / folder, args.save_guidance, args.overwrite)
        try:
            check_input(item, radiometry.bands, radiometry.allow_categorical, args.overwrite, taken)
        except FILE_ERRORS as error:
            report.failures.append((str(source), one_line(error)))
            print(f'skipped {source}: {one_line(error)}', file=sys.stderr)
            continue
        planned.append(item)
    return planned


def build_upscaler(args: argparse.Namespace, device) -> tuple[TileUpscaler | OnnxTileUpscaler, str]:
    """The network runner the tiled engine calls (torch with --weights, onnxruntime with --onnx), and the
    name of what it was built from (for provenance)."""
    if args.onnx:
        return OnnxTileUpscaler(args.onnx), Path(args.onnx).name
    network, _ = load_network(args.weights, args.opt)
    if args.self_ensemble:
        network = with_self_ensemble(network)
    upscaler = TileUpscaler(network, device, bf16=args.bf16, guidance=args.save_guidance)
    return upscaler, Path(args.weights).name


def provenance(args: argparse.Namespace, weights: str, scale: int) -> dict:
    """Dataset tags that say what made the file."""
    bands = ' '.join(','.join(map(str, g)) for g in args.bands) if args.bands and EACH_BAND not in args.bands else (
        EACH_BAND if args.bands else 'all'
    )
    return {
        'SEGSR_VERSION': segsr.__version__,
        'SEGSR_WEIGHTS': weights,
        'SEGSR_SCALE': scale,
        'SEGSR_TILE': args.tile,
        'SEGSR_OVERLAP': args.overlap,
        'SEGSR_BANDS': bands,
        'SEGSR_STRETCH': args.stretch if args.stretch != 'percentile' else f'percentile {args.percentiles}',
    }


def run(args: argparse.Namespace) -> RunReport:
    validate(args)
    device = resolve_device(args.device)
    radiometry = RadiometryOptions(
        bands=band_request(args.bands),
        stretch=args.stretch,
        percentiles=args.percentiles,
        allow_categorical=args.allow_categorical,
    )
    report = RunReport()
    planned = plan_inputs(args, radiometry, report)
    if not planned:
        raise SegSRError(f'none of the {len(report.failures)} inputs can run: {report.failures[-1][1]}')
    upscaler, weights = build_upscaler(args, device)
    tiling = TilingOptions(tile=args.tile, overlap=args.overlap, batch=args.batch)
    tiff_format = TiffFormat(cog=args.cog, compress=args.compress, blocksize=args.blocksize)
    done = upscale_files(planned, upscaler, tiling, radiometry, tiff_format, provenance(args, weights, upscaler.scale))
    report.written += done.written
    report.failures += done.failures
    return report


def stop_on_sigterm(signum: int, frame) -> None:
    """SIGTERM unwinds like SIGINT does, so every partial file is removed on the way out."""
    raise SystemExit('error: stopped by SIGTERM; partial outputs removed, finished ones kept')


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    previous = signal.signal(signal.SIGTERM, stop_on_sigterm)
    try:
        report = run(args)
    except SegSRError as error:
        sys.exit(f'error: {error}')
    finally:
        signal.signal(signal.SIGTERM, previous)
    for path in report.written:
        print(path)
    if report.failures:
        for source, reason in report.failures:
            print(f'failed: {source}: {reason}', file=sys.stderr)
        sys.exit(f'error: {len(report.failures)} input(s) failed (listed above); the others were written')


if __name__ == '__main__':
    main()
