"""LR test images made by a training file's degradation: a held-out set on which to test what a model trained
with that degradation (or with bicubic) does on such input.

    python scripts/make_degraded_lr.py -opt options/train/demo_HAT_SRx4_sensor.yml \
        --hr datasets/demo/HR/val --out datasets/demo/LR_x4_sensor/val [--seed 0] [--force_yml KEY=VALUE ...]

Every 8-bit image of ``--hr`` gets its LR, under the same name, in ``--out`` (a new folder, or one without
these names: nothing is overwritten). The degradation is ``datasets.train.degradation`` of the option file
with its settings, drawn from ``--seed``; the LR is written as an 8-bit PNG, whose values saturate at 0 and
255 as a camera's do.
"""

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import segsr  # noqa: E402,F401  (basicsr compat and registrations)
from segsr.data.degraded_samples import degrade_folder  # noqa: E402
from segsr.options.cli import parse_command_line, setup_options  # noqa: E402
from segsr.utils.errors import SegSRError  # noqa: E402


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('-opt', required=True, help='training option file whose degradation to apply')
    parser.add_argument('--hr', required=True, help='folder of HR images')
    parser.add_argument('--out', required=True, help='folder for the LR images')
    parser.add_argument('--seed', type=int, default=0, help='seed of the degradation draws')
    parser.add_argument('--force_yml', nargs='+', default=None, metavar='KEY:SUB=VALUE', help='override options')
    args = parser.parse_args(argv)
    try:
        overrides = ['--force_yml', *args.force_yml] if args.force_yml else []
        opt = setup_options(parse_command_line(True, ['-opt', args.opt, *overrides]), is_train=True)
        written = degrade_folder(opt, args.hr, args.out, args.seed)
    except SegSRError as err:
        sys.exit(f'error: {err}')
    print(f'{len(written)} LR images in {args.out}')


if __name__ == '__main__':
    main()
