"""Quicklook for docs/inference.md: one band of a scene as input, bicubic and segsr-infer output, side by side.

The scene is scikit-image's lunar surface photo (bundled, no download) turned into a uint16 GeoTIFF with
reflectance-like values; its 2x bicubic downscale is the LR input. The weights are a tiny EDSR x2 this script
trains on CPU (minutes, single thread) on other bundled gray images (camera, coins, text, grass, gravel, brick),
never on the moon, so the picture shows what a small trained network does, not a memorised answer.

    python scripts/make_inference_quicklook.py --out docs/inference_quicklook.png
"""

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import cv2  # noqa: E402
import matplotlib  # noqa: E402

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import rasterio  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from rasterio.transform import Affine  # noqa: E402
from skimage import data  # noqa: E402

import segsr  # noqa: E402,F401  (basicsr compat and arch registration)
from segsr.infer import main as infer  # noqa: E402

SCALE = 2
NETWORK = {'type': 'EDSR', 'num_in_ch': 3, 'num_out_ch': 3, 'num_feat': 32, 'num_block': 4, 'upscale': SCALE}
TRAINING_IMAGES = ('camera', 'coins', 'text', 'grass', 'gravel', 'brick')


def downscale(image: np.ndarray) -> np.ndarray:
    height, width = image.shape[:2]
    return cv2.resize(image, (width // SCALE, height // SCALE), interpolation=cv2.INTER_CUBIC)


def train_tiny_edsr(steps: int, weights: Path) -> None:
    """L1 on random 48px HR crops of the training images (gray replicated to RGB), Adam, fixed seeds."""
    from basicsr.archs import build_network  # after segsr has patched basicsr

    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    network = build_network(dict(NETWORK))
    optimizer = torch.optim.Adam(network.parameters(), lr=5e-4)
    images = [getattr(data, name)().astype(np.float32) / 255 for name in TRAINING_IMAGES]
    crop = 48
    for step in range(steps):
        hr_batch, lr_batch = [], []
        for _ in range(16):
            image = images[rng.integers(len(images))]
            row, col = rng.integers(0, image.shape[0] - crop), rng.integers(0, image.shape[1] - crop)
            patch = image[row : row + crop, col : col + crop]
            hr_batch.append(np.repeat(patch[None], 3, 0))
            lr_batch.append(np.repeat(downscale(patch)[None], 3, 0))
        loss = F.l1_loss(network(torch.from_numpy(np.stack(lr_batch))), torch.from_numpy(np.stack(hr_batch)))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if step % 200 == 0:
            print(f'step {step}: L1 {loss.item():.4f}')
    state = network.state_dict()
    torch.save({'params': state, 'params_ema': state, 'network_g': NETWORK}, weights)


def psnr(a: np.ndarray, b: np.ndarray, peak: float) -> float:
    return float(10 * np.log10(peak**2 / np.mean((a.astype(np.float64) - b) ** 2)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--out', type=Path, default=Path('docs/inference_quicklook.png'))
    parser.add_argument('--steps', type=int, default=1200)
    args = parser.parse_args()
    hr = 400 + data.moon().astype(np.float64) * 120  # uint16 values 400..31000
    lr = np.rint(downscale(hr)).astype(np.uint16)
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        train_tiny_edsr(args.steps, folder / 'edsr_x2.pth')
        profile = {'driver': 'GTiff', 'height': lr.shape[0], 'width': lr.shape[1], 'count': 1, 'dtype': 'uint16',
                   'crs': 'EPSG:32633', 'transform': Affine(20, 0, 500000, 0, -20, 5000000)}
        with rasterio.open(folder / 'moon.tif', 'w', **profile) as dataset:
            dataset.write(lr[None])
        infer(['--weights', str(folder / 'edsr_x2.pth'), '--input', str(folder / 'moon.tif'),
               '--output', str(folder / 'sr'), '--tile', '128', '--overlap', '16'])
        with rasterio.open(folder / 'sr' / 'moon.tif') as dataset:
            sr = dataset.read(1).astype(np.float64)
    bicubic = cv2.resize(lr.astype(np.float32), hr.shape[::-1], interpolation=cv2.INTER_CUBIC)
    peak = hr.max() - hr.min()
    print(f'PSNR against the HR band: bicubic {psnr(bicubic, hr, peak):.2f} dB, SR {psnr(sr, hr, peak):.2f} dB')
    rows, cols = slice(140, 300), slice(180, 340)
    nearest = np.repeat(np.repeat(lr, SCALE, 0), SCALE, 1)
    panels = (('LR input (nearest)', nearest), ('bicubic x2', bicubic), ('segsr-infer x2', sr), ('HR reference', hr))
    low, high = np.percentile(hr[rows, cols], [1, 99])  # one display stretch for every panel
    figure, axes = plt.subplots(1, 4, figsize=(12, 3.3))
    for axis, (title, image) in zip(axes, panels, strict=True):
        axis.imshow(image[rows, cols], cmap='gray', vmin=low, vmax=high, interpolation='nearest')
        axis.set_title(title, fontsize=10)
        axis.axis('off')
    figure.tight_layout()
    figure.savefig(args.out, dpi=80)
    print(f'wrote {args.out} ({args.out.stat().st_size // 1024} KB)')


if __name__ == '__main__':
    main()
