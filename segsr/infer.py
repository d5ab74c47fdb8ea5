"""Super-resolve images, folders and GeoTIFFs of any size with a trained checkpoint.

    python segsr/infer.py --weights net_g.pth --input scene.tif --output results/
    python segsr/infer.py --onnx model.onnx --input scene.tif --output results/   # onnxruntime on the CPU
    segsr-infer --weights hf://owner/repo/model.safetensors --input scene.tif --output results/
"""

import argparse
import signal
import sys
from pathlib import Path

if __name__ == '__main__':
    sys.path[0] = str(Path(__file__).resolve().parents[1])

from segsr import api  # noqa: E402  (basicsr compat and arch registration first)
from segsr.inference.execution.bands import EACH_BAND  # noqa: E402
from segsr.options.inference import COMPRESSIONS, FROM_CARD, FileOptions  # noqa: E402
from segsr.sentinel2.product import band_names  # noqa: E402
from segsr.sentinel2.qa import mask_classes  # noqa: E402
from segsr.utils.errors import SegSRError  # noqa: E402


def band_group(text: str) -> tuple[int, ...] | tuple[str, ...] | str:
    if text == EACH_BAND:
        return text
    if any(character.isalpha() for character in text):
        try:
            return band_names(text)
        except SegSRError as error:
            raise argparse.ArgumentTypeError(str(error)) from None
    try:
        return tuple(int(part) for part in text.split(','))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f'expected comma-separated band numbers like 4,3,2 (or "each"), got {text!r}'
        ) from None


def scl_classes(text: str) -> tuple[int, ...]:
    try:
        return mask_classes(text)
    except SegSRError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


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
    network.add_argument('--weights', help='weights (.safetensors or .pth) with params_ema/params and network_g: a '
                         'path, a catalogue name, hf://owner/repo/path/file[@revision] or https://... (fetched into '
                         '$SEGSR_CACHE, checked by sha256)')
    network.add_argument('--onnx', help='graph written by segsr-export, run with onnxruntime on the CPU')
    parser.add_argument('--catalogue', action='append',
                        help='model catalogue (YAML or JSON) naming weights, besides $SEGSR_CATALOGUE; repeatable')
    parser.add_argument('--opt', help='options YAML whose network_g builds the network (overrides the checkpoint)')
    parser.add_argument('--input', required=True, help='image, raster (GeoTIFF, VRT, /vsizip/...), folder or glob')
    parser.add_argument('--recursive', action='store_true', help='also search subfolders; the output mirrors them')
    parser.add_argument('--output', required=True, help='folder for the results (same file names as the inputs)')
    existing = parser.add_mutually_exclusive_group()
    existing.add_argument('--overwrite', action='store_true', help='replace outputs that already exist')
    existing.add_argument('--skip-existing', action='store_true',
                          help='leave inputs whose outputs exist (always complete: written by rename) and run the rest')
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
    parser.add_argument('--uncertainty', action='store_true',
                        help='run the x8 self-ensemble and also write its per-pixel spread as <name>_uncertainty.tif')
    parser.add_argument('--enforce-consistency', action='store_true',
                        help='correct each tile\'s output so that, degraded again (bicubic), it gives back its input '
                        '(exactly when one tile with --overlap 0 covers the scene)')
    parser.add_argument('--consistency-report', action='store_true',
                        help='write <name>_consistency.json: the output degraded again against the input '
                        '(PSNR, MAE, spectral angle)')
    parser.add_argument(
        '--bands',
        type=band_group,
        nargs='+',
        help='1-based band groups, each in network channel order (e.g. 3,2,1 4,5,7), or "each" for every band '
        'on its own; the output holds the bands in the input order. Sentinel-2 products (.SAFE, .zip): band '
        'names, stacked in the given order (e.g. B04,B03,B02,B08); left out, the Sentinel-2 bands the '
        "weights' model card names",
    )
    parser.add_argument('--resample', action='store_true',
                        help='Sentinel-2 products: bring coarser bands (20 m, 60 m) to the finest asked for (cubic)')
    parser.add_argument('--mask-classes', type=scl_classes, default=(),
                        help='Sentinel-2 L2A: SCL classes that become the output\'s nodata (e.g. 3,8,9,10)')
    parser.add_argument(
        '--stretch',
        choices=('auto', 'range', 'percentile'),
        default='auto',
        help='affine map to the network range, inverted exactly: auto = the checkpoint\'s radiometric contract; '
        'without one, range for 8-bit and percentile otherwise',
    )
    parser.add_argument('--percentiles', type=percentile_pair, default=(0.5, 99.5), help='low,high for percentile')
    parser.add_argument(
        '--allow-categorical', action='store_true', help='run on class rasters (colour table, thematic) anyway'
    )
    parser.add_argument('--cog', action='store_true', help='write Cloud-Optimized GeoTIFFs with overviews')
    parser.add_argument('--compress', choices=COMPRESSIONS, default='deflate', help='TIFF compression')
    parser.add_argument('--blocksize', type=int, help='TIFF block side, a multiple of 16 (default: fits the tile)')
    parser.add_argument('--device', help='cpu or cuda (default: cuda when available, cuda:LOCAL_RANK under torchrun)')
    parser.add_argument('--shard', help='INDEX/COUNT: run only this share of the inputs (job arrays, no launcher)')
    parser.add_argument('--rank-timeout', type=float, default=10.0,
                        help='seconds without a heartbeat after which a rank of a torchrun/Slurm run counts as dead')
    parser.add_argument('--no-io-threads', dest='io_threads', action='store_false',
                        help='read and write on the main thread instead of beside the network')
    return parser


def run(args: argparse.Namespace) -> api.RunReport:
    """The command line handed to :func:`segsr.api.run`."""
    file_options = {name: getattr(args, name) for name in FileOptions.__dataclass_fields__ if name not in FROM_CARD}
    return api.run(args.input, args.output, weights=args.weights, onnx=args.onnx, opt=args.opt, device=args.device,
                   bf16=args.bf16, self_ensemble=args.self_ensemble, recursive=args.recursive, shard=args.shard,
                   rank_timeout=args.rank_timeout, catalogue=args.catalogue, **file_options)


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
    for source, reason in report.failures:
        print(f'failed: {source}: {reason}', file=sys.stderr)
    if report.summary:
        print(report.summary, file=sys.stderr)
    failed = len(report.failures) + report.failed_elsewhere
    if failed and report.summary:  # the process that saw the whole run decides its exit status
        last, reason = report.last_failure
        sys.exit(f'error: {failed} input(s) failed (listed above; the last: {last}: {reason}); '
                 'the others were written')


if __name__ == '__main__':
    main()
