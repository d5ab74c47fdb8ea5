"""Draw a guided network's guidance maps for one image: LR, SR, then one heat map per stage over the image.

    python scripts/visualize_guidance.py --checkpoint experiments/SEGSR_SRx4_UCMerced/models/net_g_latest.pth \
        --image datasets/UCMerced/LR_x4/airplane00.png --out guidance.png

``--image`` is the LR input; with ``--hr`` it is an HR image that is first reduced by MATLAB-style
bicubic. The network is rebuilt from the checkpoint's ``network_g`` options (or from ``--opt``).
"""

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np
import torch
from matplotlib.figure import Figure

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import segsr  # noqa: E402,F401  (patches and fills basicsr's registries)
from segsr.nn.info import describe  # noqa: E402
from segsr.utils.errors import SegSRError  # noqa: E402
from segsr.utils.figures import save_figure  # noqa: E402
from segsr.weights.network import load_network  # noqa: E402

# isort: split
# basicsr only after segsr has patched it for current torchvision
from basicsr.utils import img2tensor, tensor2img  # noqa: E402
from basicsr.utils.matlab_functions import imresize  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--checkpoint', required=True, help='training checkpoint (.pth with params/params_ema)')
    parser.add_argument('--image', required=True, help='LR image (or HR image with --hr)')
    parser.add_argument('--out', default='guidance.png', help='PNG to write')
    parser.add_argument('--opt', help='training YAML whose network_g to use when the checkpoint has none')
    parser.add_argument('--param-key', default='params_ema', help='weights inside the checkpoint (params_ema/params)')
    parser.add_argument('--hr', action='store_true', help='--image is HR: reduce it by the network scale first')
    parser.add_argument('--alpha', type=float, default=0.55, help='heat-map opacity over the image')
    return parser.parse_args(argv)


def read_lr(path: Path, hr: bool, scale: int) -> torch.Tensor:
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise SegSRError(f'cannot read image {path}; give a PNG/JPEG/TIFF file')
    image = image.astype(np.float32) / 255.0
    if hr:
        height, width = image.shape[0] // scale * scale, image.shape[1] // scale * scale
        image = np.clip(imresize(image[:height, :width], 1 / scale), 0, 1)
    return img2tensor(image, bgr2rgb=True, float32=True).unsqueeze(0)


def draw(lr: torch.Tensor, sr: torch.Tensor, maps: list[torch.Tensor], out: Path, alpha: float) -> None:
    """One row: LR, SR, then every map channel of every stage as a heat map over the LR image."""
    lr_rgb = tensor2img(lr, rgb2bgr=False)
    sr_rgb = tensor2img(sr, rgb2bgr=False)
    height, width = lr_rgb.shape[:2]
    panels = [(f'stage {i + 1}' + (f' prompt {k + 1}' if m.shape[1] > 1 else ''), m[0, k, :height, :width])
              for i, m in enumerate(maps) for k in range(m.shape[1])]
    fig = Figure(figsize=(3 * (2 + len(panels)), 3.3))
    axes = fig.subplots(1, 2 + len(panels), squeeze=False)
    axes = axes[0]
    axes[0].imshow(lr_rgb, interpolation='nearest')
    axes[0].set_title(f'LR {width}x{height}')
    axes[1].imshow(sr_rgb)
    axes[1].set_title(f'SR {sr_rgb.shape[1]}x{sr_rgb.shape[0]}')
    for axis, (title, guidance) in zip(axes[2:], panels, strict=True):
        axis.imshow(lr_rgb, interpolation='nearest')
        heat = axis.imshow(guidance.numpy(), cmap='jet', alpha=alpha, interpolation='bilinear')
        fig.colorbar(heat, ax=axis, fraction=0.046, pad=0.04)
        axis.set_title(title)
    for axis in axes:
        axis.axis('off')
    save_figure(fig, out)


def main(argv: list[str] | None = None) -> Path:
    args = parse_args(argv)
    network, _ = load_network(args.checkpoint, args.opt, args.param_key)
    info = describe(network)
    if not info.map_channels:
        raise SegSRError(f'{type(network).__name__} returns no guidance maps; give a checkpoint of a guided network')
    lr = read_lr(Path(args.image), args.hr, info.scale)
    with torch.no_grad():
        sr, maps = network(lr, return_maps=True)
    out = Path(args.out)
    draw(lr, sr, maps, out, args.alpha)
    print(f'wrote {out}')
    return out


if __name__ == '__main__':
    try:
        main()
    except SegSRError as err:
        sys.exit(f'error: {err}')
