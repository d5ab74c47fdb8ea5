"""The one LR degradation used everywhere: MATLAB-style bicubic through basicsr's imresize.

Preparation, the on-the-fly training dataset and the tests all call these functions, so
the LR a model trains on and the LR it is tested on come from the same code.
"""

import numpy as np
from basicsr.data.transforms import mod_crop
from basicsr.utils.matlab_functions import imresize


def to_float(img: np.ndarray) -> np.ndarray:
    """uint8 HWC -> float32 in [0, 1], as basicsr's ``imfrombytes(float32=True)`` reads images."""
    return img.astype(np.float32) / 255.0


def to_uint8(img: np.ndarray) -> np.ndarray:
    """float in [0, 1] -> uint8 by clip and round, as basicsr's ``tensor2img`` saves images."""
    return (np.clip(img, 0, 1) * 255.0).round().astype(np.uint8)


def quantize(img: np.ndarray) -> np.ndarray:
    """Snap a float image to the 256 levels it would have after saving as 8-bit."""
    return to_uint8(img).astype(np.float32) / 255.0


def bicubic_downscale(hr: np.ndarray, scale: int) -> np.ndarray:
    """LR = imresize(modcrop(HR, scale), 1 / scale) for a float32 HWC image; float32, not rounded."""
    return imresize(mod_crop(hr, scale), 1 / scale).astype(np.float32)


def make_lr_uint8(hr: np.ndarray, scale: int) -> np.ndarray:
    """The 8-bit LR file content for an 8-bit HR image."""
    return to_uint8(bicubic_downscale(to_float(hr), scale))
