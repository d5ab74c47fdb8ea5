"""The per-band mean an SR network subtracts from its input and adds back to its output.

Published RGB networks subtract the DIV2K RGB mean. A network on another number of bands has no
such statistic; its inputs are in the network range [0, 1], so it subtracts the middle of that range.
"""

from collections.abc import Sequence

import torch
from torch import nn

from segsr.utils.errors import SegSRError

RGB_MEAN = (0.4488, 0.4371, 0.4040)
OTHER_BANDS_MEAN = 0.5

BandMean = float | Sequence[float] | None


def resolve_band_mean(given: BandMean, bands: int, where: str) -> tuple[float, ...]:
    """One mean per band: ``given`` as one value for every band or one per band; None gives the RGB
    mean on 3 bands and 0.5 on any other count."""
    if bands < 1:
        raise SegSRError(f'{where.split()[0]} takes {bands} input bands; set in_chans (num_in_ch) to 1 or more')
    if given is None:
        return RGB_MEAN if bands == 3 else (OTHER_BANDS_MEAN,) * bands
    if isinstance(given, int | float) and not isinstance(given, bool):
        return (float(given),) * bands
    values = tuple(given) if isinstance(given, Sequence) and not isinstance(given, str) else ()
    if len(values) != bands or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
        raise SegSRError(f'{where} is {given!r}; give one number, or one per band ({bands} numbers)')
    return tuple(float(v) for v in values)


def register_band_mean(module: nn.Module, mean: tuple[float, ...]) -> None:
    """``module.mean`` as a (1, bands, 1, 1) non-persistent buffer: it follows ``.to(device)`` and stays
    out of the state dict, so published checkpoints' keys are unchanged."""
    if 'mean' in vars(module):  # basicsr's archs keep it as a plain attribute
        del module.mean
    module.register_buffer('mean', torch.tensor(mean).view(1, len(mean), 1, 1), persistent=False)
