"""MATLAB-style bicubic of a batch on its device, for bicubic as one step of a degradation chain."""

import torch
from basicsr.utils.matlab_functions import imresize


def bicubic_batch(images: torch.Tensor, scale: int) -> torch.Tensor:
    """basicsr's imresize (the same function as the dataset's bicubic LR), image by image; no rounding."""
    if scale == 1:
        return images
    return torch.stack([imresize(image.cpu(), 1 / scale) for image in images]).to(images.device)
