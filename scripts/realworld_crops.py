"""The same crop of one test image from the LR input, bicubic interpolation and each model, beside the HR: the
picture of docs/realworld.md.

    python scripts/realworld_crops.py --image camera_00 --hr datasets/demo/HR/val \
        --lr datasets/demo/LR_x4_sensor/val --run "trained on bicubic=results/rw_bicubic_on_sensor" \
        --run "trained on sensor=results/rw_sensor_on_sensor" --out docs/realworld_crops.png [--box 0 0 64 64]

A run is ``LABEL=FOLDER``: a test.py results folder made with ``val.save_img: true``, whose
``visualization/<dataset>/<image>_*.png`` is the model's output. ``--box top left height width`` is the HR crop
(default: the whole image); LR and bicubic panels show the same area.
"""

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import cv2  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from segsr.utils.errors import SegSRError  # noqa: E402
from segsr.utils.figures import save_figure  # noqa: E402

PANEL_INCHES = 2.2


def read_rgb(path: Path) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise SegSRError(f'{path} is not a readable image')
    return image[..., ::-1]


def one_file(folder: Path, pattern: str) -> Path:
    found = sorted(folder.glob(pattern))
    if len(found) != 1:
        raise SegSRError(f'{len(found)} files match {pattern} under {folder}; give a folder with one such image')
    return found[0]


def panels(image: str, hr_folder: Path, lr_folder: Path, runs: list[tuple[str, Path]]) -> dict[str, np.ndarray]:
    hr = read_rgb(one_file(hr_folder, f'{image}.*'))
    lr = read_rgb(one_file(lr_folder, f'{image}.*'))
    scale = hr.shape[0] // lr.shape[0]
    height, width = hr.shape[:2]
    shown = {'LR input': cv2.resize(lr, (width, height), interpolation=cv2.INTER_NEAREST),
             'bicubic': cv2.resize(lr, (width, height), interpolation=cv2.INTER_CUBIC)}
    for label, folder in runs:
        shown[label] = read_rgb(one_file(folder, f'visualization/*/{image}_*.png'))
    shown['HR'] = hr
    if any(picture.shape != hr.shape for picture in shown.values()):
        raise SegSRError(f'the outputs of {image} are not {width} x {height} (x{scale} of the LR); give the runs '
                         'of this LR set')
    return shown


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--image', required=True, help='image name without extension')
    parser.add_argument('--hr', required=True, type=Path)
    parser.add_argument('--lr', required=True, type=Path)
    parser.add_argument('--run', action='append', required=True, metavar='LABEL=FOLDER')
    parser.add_argument('--box', nargs=4, type=int, metavar=('TOP', 'LEFT', 'HEIGHT', 'WIDTH'))
    parser.add_argument('--out', required=True)
    args = parser.parse_args(argv)
    try:
        runs = []
        for entry in args.run:
            label, sep, folder = entry.partition('=')
            if not sep:
                raise SegSRError(f'--run {entry}: write LABEL=FOLDER')
            runs.append((label, Path(folder)))
        shown = panels(args.image, args.hr, args.lr, runs)
    except SegSRError as err:
        sys.exit(f'error: {err}')
    top, left, height, width = args.box or (0, 0, *next(iter(shown.values())).shape[:2])
    fig = Figure(figsize=(PANEL_INCHES * len(shown), PANEL_INCHES + 0.3))
    for axis, (label, picture) in zip(fig.subplots(1, len(shown)), shown.items(), strict=True):
        axis.imshow(picture[top:top + height, left:left + width], interpolation='nearest')
        axis.set_title(label, fontsize=8)
        axis.set_axis_off()
    save_figure(fig, args.out)
    print(f'{len(shown)} panels of {args.image}: {args.out}')


if __name__ == '__main__':
    main()
