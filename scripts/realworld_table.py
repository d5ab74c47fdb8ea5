"""The table of docs/realworld.md: two models (trained on bicubic and on sensor-degraded LR) tested on two LR
sets of the same HR images (bicubic LR and LR made by the sensor model), with paired differences.

    python scripts/realworld_table.py \
        --bicubic-model results/rw_bicubic_on_bicubic results/rw_bicubic_on_sensor \
        --sensor-model results/rw_sensor_on_bicubic results/rw_sensor_on_sensor --out results/realworld.md

Each model gets its two test.py results (folders or JSON files), bicubic LR first. Differences are the sensor
model minus the bicubic model, per image: mean [95 % bootstrap CI over images], paired Wilcoxon p.
"""

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from scripts.demo_table import difference, difference_cell, emit_table, read_result  # noqa: E402

METRICS = (('psnr', 'PSNR (dB)', 3), ('ssim', 'SSIM', 4), ('lr_psnr', 'LR-PSNR (dB)', 2), ('cpsnr', 'cPSNR (dB)', 2))
TEST_SETS = ('bicubic LR', 'sensor LR')
NOTE = ('LR-PSNR degrades the output again with bicubic, so on sensor LR it measures consistency with a '
        'degradation other than the one that made the input. LPIPS/DISTS need ImageNet backbone weights, which '
        'this table was made without.')


def realworld_table(runs: dict[str, list[dict]]) -> str:
    first = runs['bicubic model'][0]
    metrics = [(key, title, digits) for key, title, digits in METRICS
               if all(key in result['average'] for results in runs.values() for result in results)]
    header = ['test LR', 'model', *(title for _, title, _ in metrics)]
    lines = ['| ' + ' | '.join(header) + ' |', '|' + '|'.join('---' for _ in header) + '|']
    for position, test_set in enumerate(TEST_SETS):
        base, other = runs['bicubic model'][position], runs['sensor model'][position]
        lines.append(f'| {test_set} | bicubic (input) | '
                     + ' | '.join(f"{base['average'][f'bicubic_{key}']:.{digits}f}"
                                  if f'bicubic_{key}' in base['average'] else '' for key, _, digits in metrics) + ' |')
        for label, result in (('trained on bicubic', base), ('trained on sensor', other)):
            lines.append(f'| {test_set} | {label} | '
                         + ' | '.join(f"{result['average'][key]:.{digits}f}" for key, _, digits in metrics) + ' |')
        lines.append(f'| {test_set} | sensor − bicubic model | '
                     + ' | '.join(difference_cell(difference(base, other, key), digits) for key, _, digits in metrics)
                     + ' |')
    protocol = first['protocol']['text'] if isinstance(first['protocol'], dict) else first['protocol']
    return '\n'.join([f"{first['dataset']}, {first['num_images']} images, {protocol}.", '', *lines, '', NOTE]) + '\n'


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--bicubic-model', nargs=2, required=True, metavar=('ON_BICUBIC', 'ON_SENSOR'))
    parser.add_argument('--sensor-model', nargs=2, required=True, metavar=('ON_BICUBIC', 'ON_SENSOR'))
    parser.add_argument('--out', help='also write the table to this Markdown file')
    args = parser.parse_args(argv)
    return emit_table(lambda: realworld_table({'bicubic model': [read_result(source) for source in args.bicubic_model],
                                               'sensor model': [read_result(source) for source in args.sensor_model]}),
                      args.out)


if __name__ == '__main__':
    main()
