"""The Wald-protocol table of docs/sentinel2.md from test.py results of reference networks on one test set: per
band PSNR and SSIM, then SAM and ERGAS over the bands, for bicubic and each network.

    python scripts/wald_table.py results/demo_S2Reference_x2 results/demo_GuidedS2Reference_x2 \
        --bands B05,B06,B07,B8A,B11,B12 --out results/wald.md

``--bands`` names the measured bands in the order the metrics' ``bands`` option lists them.
"""

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from scripts.demo_table import emit_table, read_result  # noqa: E402
from segsr.utils.errors import SegSRError  # noqa: E402


def measured_bands(result: dict, names: list[str]) -> None:
    average = result['average']
    missing = [f'psnr_band{i}' for i in range(1, len(names) + 1) if f'psnr_band{i}' not in average]
    if missing or f'psnr_band{len(names) + 1}' in average:
        raise SegSRError(f'{result["path"]} does not hold {len(names)} measured bands; give --bands as many names '
                         'as the metrics measured')


def same_test_set(results: list[dict]) -> None:
    """Rows compare only when every network was tested on the same pairs: the same bicubic scores."""
    first = results[0]
    for result in results[1:]:
        if result['dataset'] != first['dataset'] or result['num_images'] != first['num_images'] or any(
                abs(value - first['average'].get(key, float('nan'))) > 1e-9
                for key, value in result['average'].items() if key.startswith('bicubic_')):
            raise SegSRError(f'{result["path"]} was not tested on the test set of {first["path"]}; compare results '
                             'of one test set (the same dataset and pairs)')


def table_row(label: str, average: dict, prefix: str, count: int) -> str:
    scores = [f"{average[f'{prefix}psnr_band{i}']:.2f} / {average[f'{prefix}ssim_band{i}']:.4f}"
              for i in range(1, count + 1)]
    return f"| {label} | {' | '.join(scores)} | {average[f'{prefix}sam']:.3f} | {average[f'{prefix}ergas']:.3f} |"


def wald_table(results: list[dict], names: list[str]) -> str:
    for result in results:
        measured_bands(result, names)
    same_test_set(results)
    header = ['', *names, 'SAM (°)', 'ERGAS']
    lines = ['| ' + ' | '.join(header) + ' |', '|' + '|'.join('---' for _ in header) + '|',
             table_row('bicubic', results[0]['average'], 'bicubic_', len(names))]
    lines += [table_row(result.get('network', 'network'), result['average'], '', len(names)) for result in results]
    first = results[0]
    return '\n'.join([f"{first['dataset']}, {first['num_images']} image(s): PSNR (dB) / SSIM per band; "
                      'SAM and ERGAS over the bands.', '', *lines]) + '\n'


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('results', nargs='+', help='test.py results folders or JSON files, one per network')
    parser.add_argument('--bands', required=True, help='names of the measured bands, comma-separated')
    parser.add_argument('--out', help='also write the table to this Markdown file')
    args = parser.parse_args(argv)
    return emit_table(lambda: wald_table([read_result(path) for path in args.results], args.bands.split(',')),
                      args.out)


if __name__ == '__main__':
    main()
