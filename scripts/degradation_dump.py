"""A picture of what the network is trained on: for a few training samples, the HR, the image after each stage
of the training degradation and the LR, side by side (one row per sample).

    python scripts/degradation_dump.py -opt options/train/demo_HAT_SRx4_sensor.yml --num 4 \
        --out results/degradation_dump.png [--force_yml KEY=VALUE ...]

Stages come from ``datasets.train.degradation`` (``bicubic``, ``realesrgan``, ``sensor`` or a chain), applied
to whole samples without the training crop and pair pool. Each panel shows three bands: ``train.rgb_bands`` or
``network_g.sfem.rgb_bands`` (numbered from 1), else the first three; network values in
``network_g.sfem.display_range`` (default 0..1) run black to white. LR-grid panels are drawn pixel for pixel.
"""

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

import segsr  # noqa: E402,F401  (basicsr compat and registrations)
from segsr.data.degraded_samples import sample_stages  # noqa: E402
from segsr.options.cli import parse_command_line, setup_options  # noqa: E402
from segsr.options.degradation import degradation_names  # noqa: E402
from segsr.utils.errors import SegSRError  # noqa: E402
from segsr.utils.figures import save_figure  # noqa: E402

PANEL_INCHES = 1.9


def display_settings(opt: dict, bands: int) -> tuple[list[int], tuple[float, float]]:
    """0-based display bands and the network-value range shown black..white."""
    sfem = (opt.get('network_g') or {}).get('sfem') or {}
    chosen = (opt.get('train') or {}).get('rgb_bands') or sfem.get('rgb_bands')
    if chosen is None:
        chosen = [1, 2, 3] if bands >= 3 else [1, 1, 1]
    low, high = sfem.get('display_range') or (0.0, 1.0)
    return [int(band) - 1 for band in chosen], (float(low), float(high))


def panel(image, bands: list[int], value_range: tuple[float, float]) -> np.ndarray:
    low, high = value_range
    rgb = image[bands].permute(1, 2, 0).double().numpy()
    return np.clip((rgb - low) / (high - low), 0, 1)  # for display only


def draw(samples: list[dict], opt: dict) -> Figure:
    names = list(dict.fromkeys(name for sample in samples for name in sample if name != 'lr')) + ['lr']
    bands, value_range = display_settings(opt, samples[0]['hr'].shape[0])
    fig = Figure(figsize=(PANEL_INCHES * len(names), PANEL_INCHES * len(samples) + 0.4))
    axes = fig.subplots(len(samples), len(names), squeeze=False)
    for row, sample in enumerate(samples):
        for col, name in enumerate(names):
            axis = axes[row][col]
            axis.set_axis_off()
            if name not in sample:
                axis.set_title(f'{name}\nnot drawn', fontsize=7)
                continue
            image = sample[name]
            axis.imshow(panel(image, bands, value_range), interpolation='nearest')
            axis.set_title(f'{name}\n{image.shape[-1]} x {image.shape[-2]}', fontsize=7)
    chain = ' then '.join(degradation_names(opt['datasets']['train']))
    fig.suptitle(f'{opt["name"]}: training degradation {chain}', fontsize=9)
    return fig


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('-opt', required=True, help='training option file')
    parser.add_argument('--num', type=int, default=4, help='training samples to show (default 4)')
    parser.add_argument('--out', default='results/degradation_dump.png', help='PNG to write')
    parser.add_argument('--seed', type=int, default=0, help='seed of the degradation draws')
    parser.add_argument('--dpi', type=int, default=120, help='resolution of the picture (default 120)')
    parser.add_argument('--force_yml', nargs='+', default=None, metavar='KEY:SUB=VALUE', help='override options')
    args = parser.parse_args(argv)
    try:
        if args.num < 1:
            raise SegSRError(f'--num {args.num}: show at least one sample')
        overrides = ['--force_yml', *args.force_yml] if args.force_yml else []
        opt = setup_options(parse_command_line(True, ['-opt', args.opt, *overrides]), is_train=True)
        samples = sample_stages(opt, args.num, args.seed)
        save_figure(draw(samples, opt), args.out, dpi=args.dpi)
    except SegSRError as err:
        sys.exit(f'error: {err}')
    stages = dict.fromkeys(name for sample in samples for name in sample)
    print(f'{len(samples)} samples, stages {", ".join(stages)}: {args.out}')


if __name__ == '__main__':
    main()
