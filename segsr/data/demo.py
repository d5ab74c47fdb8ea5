"""The embedded demo datasets: crops of the photographs that scikit-image ships, with MATLAB-bicubic LR, and
4-band uint16 rasters made from them (red, green, blue and a synthetic near infrared, in Sentinel-2 L2A DNs)."""

import os
from pathlib import Path

import cv2
import numpy as np
import skimage
from tqdm import tqdm

from segsr.clip.tiny import write_tiny_clip_checkpoint
from segsr.data.prepare.images import encode_png
from segsr.data.raster_splits import SplitPlan, make_raster_splits
from segsr.degradations.bicubic import make_lr_uint8
from segsr.utils.files import atomic_write_bytes, write_text_if_changed

TRAIN_SOURCES = (
    'astronaut', 'chelsea', 'coffee', 'rocket', 'motorcycle_left', 'grass', 'gravel', 'brick', 'moon', 'retina',
)
VAL_SOURCES = ('camera', 'coins', 'ihc')
SCALES = (2, 3, 4)
CROP = 96  # divisible by every demo scale
TRAIN_CROPS_PER_IMAGE = 10
VAL_CROPS_PER_IMAGE = 2


def read_skimage_photo(name: str) -> np.ndarray:
    """A scikit-image sample as 8-bit BGR, gray ones repeated over three channels."""
    folder = Path(skimage.data.__file__).parent
    path = next(folder.glob(f'{name}.*'))
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        raise FileNotFoundError(f'scikit-image sample {path} cannot be read')
    return img


def crop_positions(height: int, width: int, count: int) -> list[tuple[int, int]]:
    """Evenly spread, deterministic top-left corners of ``count`` crops.

    Crops keep off the outer fifth of each photograph, where some samples are flat black.
    """
    cols = int(np.ceil(np.sqrt(count * width / height)))
    rows = int(np.ceil(count / cols))
    margin_y, margin_x = height // 5, width // 5
    ys = np.linspace(margin_y, height - CROP - margin_y, rows).round().astype(int)
    xs = np.linspace(margin_x, width - CROP - margin_x, cols).round().astype(int)
    return [(int(y), int(x)) for y in ys for x in xs][:count]


def write_png(path: Path, img: np.ndarray) -> None:
    atomic_write_bytes(path, encode_png(img))


def build_demo_dataset(out_dir: str | os.PathLike) -> dict[str, int]:
    """Write HR crops, LR_x{2,3,4}, meta files and a tiny random CLIP under ``out_dir``.

    Returns the image count per split.
    """
    out_dir = Path(out_dir)
    write_tiny_clip_checkpoint(out_dir / 'tiny_clip.pt')
    counts = {}
    for split, sources, per_image in (('train', TRAIN_SOURCES, TRAIN_CROPS_PER_IMAGE),
                                      ('val', VAL_SOURCES, VAL_CROPS_PER_IMAGE)):
        names = []
        for source in tqdm(sources, desc=f'demo {split}', unit='photo'):
            photo = read_skimage_photo(source)
            for index, (y, x) in enumerate(crop_positions(*photo.shape[:2], per_image)):
                name = f'{source}_{index:02d}.png'
                hr = photo[y:y + CROP, x:x + CROP]
                write_png(out_dir / 'HR' / split / name, hr)
                for scale in SCALES:
                    write_png(out_dir / f'LR_x{scale}' / split / name, make_lr_uint8(hr, scale))
                names.append(name)
        write_text_if_changed(out_dir / 'meta' / f'{split}.txt', ''.join(f'{name}\n' for name in names))
        counts[split] = len(names)
    return counts


RASTER_SOURCES = ('astronaut', 'chelsea', 'coffee', 'rocket', 'motorcycle_left', 'ihc')
RASTER_SPLIT = SplitPlan(block=128, gap=64, window=64, fractions=(0.7, 0.15, 0.15), seed=0, scale=4)
L2A_QUANTIFICATION, L2A_ADD_OFFSET = 10000, -1000


def four_band_reflectance(bgr: np.ndarray) -> np.ndarray:
    """(4, H, W) reflectance 0..0.5: red, green, blue, and a near infrared that is bright where green
    dominates (as over vegetation) and follows the overall brightness elsewhere."""
    rgb = bgr[..., ::-1].astype(np.float64).transpose(2, 0, 1) / 255.0
    greenness = np.clip(rgb[1] - (rgb[0] + rgb[2]) / 2, 0, None)
    nir = np.clip(0.25 + 0.5 * rgb.mean(axis=0) + 1.5 * greenness, 0, 1)
    return 0.5 * np.concatenate([rgb, nir[None]])


def write_l2a_raster(path: Path, reflectance: np.ndarray, index: int) -> None:
    """uint16 DNs = reflectance * 10000 - BOA_ADD_OFFSET, tagged as L2A, 10 m pixels; 0 is nodata."""
    import rasterio
    from rasterio.transform import Affine

    dn = np.rint(reflectance * L2A_QUANTIFICATION - L2A_ADD_OFFSET).astype(np.uint16)
    profile = {'driver': 'GTiff', 'height': dn.shape[1], 'width': dn.shape[2], 'count': dn.shape[0],
               'dtype': 'uint16', 'nodata': 0, 'crs': 'EPSG:32633', 'tiled': True, 'blockxsize': 128,
               'blockysize': 128, 'compress': 'deflate',
               'transform': Affine.translation(500000 + 20000 * index, 5000000) @ Affine.scale(10, -10)}
    temporary = path.with_name(f'.{path.name}.partial')
    with rasterio.open(temporary, 'w', **profile) as dataset:
        dataset.write(dn)
        dataset.update_tags(BOA_QUANTIFICATION_VALUE=str(L2A_QUANTIFICATION))
        for band in range(1, dn.shape[0] + 1):
            dataset.update_tags(band, BOA_ADD_OFFSET=str(L2A_ADD_OFFSET))
    os.replace(temporary, path)


def build_raster_demo(out_dir: str | os.PathLike) -> dict[str, int]:
    """Write 4-band L2A-style rasters of the scikit-image photographs, spatially disjoint split lists and a tiny
    random CLIP under ``out_dir``; return the line count of each list."""
    out_dir = Path(out_dir)
    (out_dir / 'scenes').mkdir(parents=True, exist_ok=True)
    write_tiny_clip_checkpoint(out_dir / 'tiny_clip.pt')
    for index, source in enumerate(tqdm(RASTER_SOURCES, desc='raster demo', unit='scene')):
        write_l2a_raster(out_dir / 'scenes' / f'{source}.tif', four_band_reflectance(read_skimage_photo(source)),
                         index)
    return make_raster_splits(str(out_dir / 'scenes'), out_dir / 'splits', RASTER_SPLIT)
