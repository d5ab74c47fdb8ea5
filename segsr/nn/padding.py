"""Padding images to a size multiple, robust to inputs thinner than the pad."""

import torch
import torch.nn.functional as F

from segsr.nn.info import NetworkInfo


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


def crop_to_scale(out, height: int, width: int, scale: int):
    """The image (or the image of an ``(image, *extras)`` tuple) cropped to ``scale`` times ``height x width``."""
    if isinstance(out, tuple):
        return (out[0][..., : height * scale, : width * scale], *out[1:])
    return out[..., : height * scale, : width * scale]


class PadsInput:
    """Mixin of networks that run on inputs padded to ``network_info.pad_multiple``.

    ``forward`` reflect-pads once, runs ``forward_padded`` and crops the image to ``scale`` times the
    input size. An input that is already a multiple is passed on as it is, so a padding network inside
    another (HAT in SEGSR) does not pad again, and compiling ``forward_padded`` alone keeps the
    compiled graph on padded sizes only.
    """

    network_info: NetworkInfo

    def forward(self, x: torch.Tensor, *args, **kwargs):
        info = self.network_info
        height, width = x.shape[-2:]
        return crop_to_scale(self.forward_padded(pad_to_multiple(x, info.pad_multiple), *args, **kwargs),
                             height, width, info.scale)
