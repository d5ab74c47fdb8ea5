"""The Wald-protocol table of docs/sentinel2.md from a test.py result of the reference network: per band PSNR
and SSIM, then SAM and ERGAS over the bands, for bicubic and the network.

    python scripts/wald_table.py results/demo_S2Reference_x2 --bands B05,B06,B07,B8A,B11,B12

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


def wald_table(result: dict, names: list[str]) -> str:
    average = result['average']
    missing = [f'psnr_band{i}' for i in range(1, len(names) + 1) if f'psnr_band{i}' not in average]
    if missing or f'psnr_band{len(names) + 1}' in average:
        raise SegSRError(f'{result["path"]} does not hold {len(names)} measured bands; give --bands as many names '
                         'as the metrics measured')
    header = ['', *names, 'SAM (°)', 'ERGAS']
    lines = ['| ' + ' | '.join(header) + ' |', '|' + '|'.join('---' for _ in header) + '|']
    for label, prefix in (('bicubic', 'bicubic_'), (result.get('network', 'network'), '')):
        psnr = [f"{average[f'{prefix}psnr_band{i}']:.2f} / {average[f'{prefix}ssim_band{i}']:.4f}"
                for i in range(1, len(names) + 1)]
        lines.append(f"| {label} | {' | '.join(psnr)} | {average[f'{prefix}sam']:.3f} | "
                     f"{average[f'{prefix}ergas']:.3f} |")
    return '\n'.join([f"{result['dataset']}, {result['num_images']} image(s): PSNR (dB) / SSIM per band; "
                      'SAM and ERGAS over the bands.', '', *lines]) + '\n'


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('result', help='test.py results folder or JSON')
    parser.add_argument('--bands', required=True, help='names of the measured bands, comma-separated')
    args = parser.parse_args(argv)
    return emit_table(lambda: wald_table(read_result(args.result), args.bands.split(',')), None)


if __name__ == '__main__':
    main()
