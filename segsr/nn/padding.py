"""Padding images to a size multiple, robust to inputs thinner than the pad."""

import torch
import torch.nn.functional as F


def reflect_pad(x: torch.Tensor, pad_bottom: int, pad_right: int) -> torch.Tensor:
    """Reflect-pad the bottom and right of an NCHW tensor by any amount.

    ``F.pad(mode='reflect')`` refuses a pad as large as the input; a thin tile
    (e.g. 3 pixels padded up to a 16-pixel window) is reflected repeatedly instead.
    A single row or column has nothing to reflect and is replicated.
    """
    while pad_bottom > 0 or pad_right > 0:
        h, w = x.shape[-2:]
        step_h = min(pad_bottom, h - 1)
        step_w = min(pad_right, w - 1)
        if (step_h == 0 and pad_bottom > 0) or (step_w == 0 and pad_right > 0):
            return F.pad(x, (0, pad_right, 0, pad_bottom), mode='replicate')
        x = F.pad(x, (0, step_w, 0, step_h), mode='reflect')
        pad_bottom -= step_h
        pad_right -= step_w
    return x


def pad_to_multiple(x: torch.Tensor, multiple: int) -> torch.Tensor:
    """Reflect-pad height and width of an NCHW tensor up to the next multiple."""
    h, w = x.shape[-2:]
    return reflect_pad(x, (-h) % multiple, (-w) % multiple)
