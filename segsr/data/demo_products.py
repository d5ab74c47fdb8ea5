"""Demo Sentinel-2 L2A products made from scikit-image's photographs, in the real layout, for the reference
network's demo (docs/sentinel2.md).

Each photo becomes a scene of reflectance: the 10 m bands B02, B03, B04 from its blue, green and red, B08 a near
infrared bright where green dominates (as :func:`segsr.data.demo.four_band_reflectance`); the 20 m bands are
mixtures of the 10 m ones (the red edge between red and near infrared, the short-wave infrared from the
visible) plus a texture of their own (scikit-image's grass, gravel and brick, which no 10 m band holds), seen
through a PSF of MTF 0.3 at the 20 m Nyquist frequency and sampled at 20 m. How much of a band is its own sets
how much the reference can tell; real short-wave infrared bands hold more of their own than these.
"""

from pathlib import Path

import cv2
import numpy as np

from segsr.clip.tiny import write_tiny_clip_checkpoint
from segsr.data.demo import four_band_reflectance, read_skimage_photo
from segsr.data.s2_wald import halve
from segsr.sentinel2.layout import write_product

TRAIN_PHOTOS = ('astronaut', 'coffee', 'rocket', 'motorcycle_left', 'retina', 'hubble_deep_field')
VAL_PHOTOS = ('chelsea',)
SIDE = 256
"""Pixels a side at 10 m (128 at 20 m)."""
MIXTURES = {  # weights of red, green, blue, near infrared, and of the band's own field
    'B05': (0.7, 0.0, 0.0, 0.3, 0.1), 'B06': (0.4, 0.0, 0.0, 0.6, 0.1), 'B07': (0.2, 0.0, 0.0, 0.8, 0.1),
    'B8A': (0.0, 0.0, 0.0, 1.0, 0.05), 'B11': (0.5, 0.3, 0.0, 0.2, 0.3), 'B12': (0.6, 0.2, 0.2, 0.0, 0.3),
}
PRODUCT_MTF = 0.3


TEXTURES = ('grass', 'gravel', 'brick')


def own_field(side: int, seed: int) -> np.ndarray:
    """A texture in [-0.5, 0.5], at full detail: what a band sees that the 10 m bands do not."""
    gray = cv2.cvtColor(read_skimage_photo(TEXTURES[seed % len(TEXTURES)]), cv2.COLOR_BGR2GRAY).astype(np.float64)
    offset = (37 * seed) % (min(gray.shape) - side + 1)
    crop = gray[offset:offset + side, offset:offset + side] / 255.0
    return crop - crop.mean()


def scene_bands(photo: str, index: int) -> dict[str, dict[int, np.ndarray]]:
    """The product's bands of one photo: ``{band: {resolution: reflectance}}`` and the SCL (all vegetation)."""
    bgr = read_skimage_photo(photo)
    side = min(SIDE, *bgr.shape[:2])
    top, left = (bgr.shape[0] - side) // 2, (bgr.shape[1] - side) // 2
    red, green, blue, nir = four_band_reflectance(bgr[top:top + side, left:left + side])
    fine = {'B02': blue, 'B03': green, 'B04': red, 'B08': nir}
    bands = {name: {10: values} for name, values in fine.items()}
    coarse = [np.clip(w_r * red + w_g * green + w_b * blue + w_n * nir + w_own * own_field(side, 10 * index + k),
                      0.01, 0.9) for k, (w_r, w_g, w_b, w_n, w_own) in enumerate(MIXTURES.values())]
    for name, values in zip(MIXTURES, halve(np.stack(coarse), PRODUCT_MTF), strict=True):
        bands[name] = {20: np.clip(values, 0.0, 1.0)}
    bands['SCL'] = {20: np.full((side // 2, side // 2), 4, np.uint8)}
    return bands


def build_s2_demo_products(out: Path) -> dict[str, list[Path]]:
    """``out/train`` and ``out/val`` holding one L2A product per photo, and ``out/tiny_clip.pt`` for the guided
    network's SFEM (random weights: nothing is downloaded)."""
    write_tiny_clip_checkpoint(out / 'tiny_clip.pt')
    written = {}
    for split, photos in (('train', TRAIN_PHOTOS), ('val', VAL_PHOTOS)):
        offset = 0 if split == 'train' else len(TRAIN_PHOTOS)
        written[split] = [write_product(out / split, scene_bands(photo, offset + index), seed=offset + index)
                          for index, photo in enumerate(photos)]
    return written
