"""The embedded demo dataset: crops of the photographs that scikit-image ships, with MATLAB-bicubic LR."""

import os
from pathlib import Path

import cv2
import numpy as np
import skimage
from tqdm import tqdm

from segsr.clip.tiny import write_tiny_clip_checkpoint
from segsr.data.bicubic import make_lr_uint8
from segsr.data.prepare.images import encode_png
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
