"""One table for `make demo`: bicubic, HAT and SeG-SR (plain and self-ensembled), and whether they differ.

    python scripts/demo_table.py --hat results/demo_HAT_SRx4 --segsr results/demo_SEGSR_SRx4 \
        [--hat-plus results/demo_HAT_SRx4_plus --segsr-plus results/demo_SEGSR_SRx4_plus] --out results/demo.md

Each run is a test.py results folder (one JSON) or JSON file of the same test images. Differences are
per image, with a 95 % bootstrap interval over images and a paired Wilcoxon p-value.
"""

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from segsr.utils.errors import SegSRError  # noqa: E402
from segsr.utils.files import atomic_write_bytes  # noqa: E402
from segsr.utils.paired_stats import PairedDifference, compare_metric, pair_images  # noqa: E402
from segsr.utils.results_file import RESULTS_FIX, read_json_file  # noqa: E402

RANDOM_CLIP_NOTE = (
    'The demo CLIP is tiny and randomly initialised, so its guidance maps carry no scene semantics: the SeG-SR '
    'minus HAT difference measures what the extra trainable modulation does on the same backbone and schedule '
    '(and the noise of a few images), not the value of semantic guidance, which needs pretrained CLIP weights '
    'and the full configurations.'
)

# Shown when every run has them (docs/evaluation.md): consistency with the input, and shift/bias-tolerant PSNR.
EXTRA_COLUMNS = (('lr_psnr', 'LR-PSNR (dB)'), ('cpsnr', 'cPSNR (dB)'))
EXTRA_NOTE = (' LR-PSNR: the output degraded again (bicubic) against its LR input; cPSNR: RGB PSNR at the best '
              'shift (up to 3 px) and brightness bias (docs/evaluation.md). Semantic (CLIP) scores need a pretrained '
              'CLIP, which the demo does not have.')


def read_result(source: str) -> dict:
    path = Path(source)
    if path.is_dir():
        found = sorted(path.glob('*.json'))
        if len(found) != 1:
            raise SegSRError(f'{path} holds {len(found)} results JSON files; give the one to use')
        path = found[0]
    if not path.is_file():
        raise SegSRError(f'results {source} do not exist; run segsr/test.py first (make demo does)')
    result = read_json_file(path, RESULTS_FIX)
    if not isinstance(result, dict) or not result.get('images'):
        raise SegSRError(f'{path} lists no per-image results; give a JSON written by segsr/test.py')
    return {**result, 'path': str(path)}


def difference(base: dict, other: dict, metric: str) -> PairedDifference:
    return compare_metric(pair_images(base['images'], other['images'], f"{base['path']} and {other['path']}"), metric)


def difference_cell(diff: PairedDifference, digits: int) -> str:
    return f'{diff.mean:+.{digits}f} {diff.interval_text(digits)}, p {diff.p_value:.2g}'


def demo_table(runs: dict[str, dict]) -> str:
    """Markdown: one row per method, then the paired differences (mean, 95 % CI, Wilcoxon p); LR-PSNR and cPSNR
    columns where the results hold them."""
    hat = runs['HAT']
    extra = [(key, title) for key, title in EXTRA_COLUMNS if all(key in run['average'] for run in runs.values())]
    rows = [['bicubic', f"{hat['average']['bicubic_psnr']:.4f}", f"{hat['average']['bicubic_ssim']:.4f}", '',
             *(f"{hat['average'][f'bicubic_{key}']:.2f}" if f'bicubic_{key}' in hat['average'] else ''
               for key, _ in extra)]]
    for label, run in runs.items():
        gain = run['average']['psnr'] - run['average']['bicubic_psnr']
        rows.append([label, f"{run['average']['psnr']:.4f}", f"{run['average']['ssim']:.4f}", f'{gain:+.4f}',
                     *(f"{run['average'][key]:.2f}" for key, _ in extra)])
    pairs = [('SeG-SR', 'HAT'), ('SeG-SR+', 'HAT+'), ('HAT+', 'HAT'), ('SeG-SR+', 'SeG-SR')]
    for minuend, subtrahend in pairs:
        if minuend in runs and subtrahend in runs:
            base, other = runs[subtrahend], runs[minuend]
            rows.append([f'{minuend} − {subtrahend}', difference_cell(difference(base, other, 'psnr'), 3),
                         difference_cell(difference(base, other, 'ssim'), 4), '',
                         *(difference_cell(difference(base, other, key), 2) for key, _ in extra)])
    header = ['method', 'PSNR (dB)', 'SSIM', 'PSNR vs bicubic', *(title for _, title in extra)]
    lines = ['| ' + ' | '.join(header) + ' |', '|' + '|'.join('---' for _ in header) + '|']
    lines += ['| ' + ' | '.join(row) + ' |' for row in rows]
    protocol = hat['protocol']['text'] if isinstance(hat['protocol'], dict) else hat['protocol']
    return '\n'.join([
        f"{hat['dataset']}, {hat['num_images']} images, {protocol}. "
        '"+": mean over the 8 flips and rotations (x8 self-ensemble). Differences: per-image mean '
        '[95 % bootstrap CI over images], paired Wilcoxon p.' + (EXTRA_NOTE if extra else ''), '', *lines, '',
        RANDOM_CLIP_NOTE,
    ]) + '\n'


def emit_table(make: Callable[[], str], out: str | None) -> str:
    """The table ``make`` builds, printed and, with ``out``, written there; a bad input exits in one line."""
    try:
        table = make()
    except SegSRError as err:
        sys.exit(f'error: {err}')
    if out:
        atomic_write_bytes(Path(out), table.encode('utf-8'))
    print(table)
    return table


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--hat', required=True, help='HAT results folder or JSON')
    parser.add_argument('--segsr', required=True, help='SeG-SR results folder or JSON')
    parser.add_argument('--hat-plus', help='HAT results with val.self_ensemble: true')
    parser.add_argument('--segsr-plus', help='SeG-SR results with val.self_ensemble: true')
    parser.add_argument('--out', help='also write the table to this Markdown file')
    args = parser.parse_args(argv)
    sources = {'HAT': args.hat, 'HAT+': args.hat_plus, 'SeG-SR': args.segsr, 'SeG-SR+': args.segsr_plus}
    return emit_table(lambda: demo_table({label: read_result(source) for label, source in sources.items() if source}),
                      args.out)


if __name__ == '__main__':
    main()
