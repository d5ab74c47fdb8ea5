"""An input compared with the model card of its weights: the band count it was trained on is required, a dtype or
value range far from its radiometric contract is worth one warning."""

import warnings

import numpy as np

from segsr.radiometry.contract import Radiometry
from segsr.utils.errors import SegSRError

RGB_CHANNELS = 3
FAR = 1.0
"""How far outside the contract's physical range, in range widths, the median of an input may lie unwarned."""


def check_band_count(card: dict | None, band_count: int, alpha_band: int | None, picked: bool, name) -> None:
    """An input whose bands are not picked (``--bands``) must have the card's input band count (an RGB network
    also takes one band as gray)."""
    if not card or picked:
        return
    expected = card['input']['count']
    given = band_count - (alpha_band is not None)
    if expected and given != expected and not (expected == RGB_CHANNELS and given == 1):
        raise SegSRError(f'{name} has {given} band(s) but the model card of these weights expects {expected} '
                         f'({", ".join(card["input"]["bands"])}): give an input of {expected} bands or pick them '
                         'with --bands')


def far_from_contract(card: dict, dtype: np.dtype, sample: np.ndarray | None) -> str | None:
    """Why an input looks unlike what the network was trained on, or None."""
    expected = card['input'].get('dtype')
    if expected and np.dtype(dtype) != np.dtype(expected):
        return f'its dtype is {np.dtype(dtype)}, the weights were trained on {expected}'
    contract = Radiometry.from_dict(card['radiometry'])
    finite = sample[np.isfinite(sample)] if sample is not None and sample.dtype.kind == 'f' else sample
    if finite is None or not finite.size or contract.scale is None:
        return None
    median = float(np.median(finite)) * float(np.mean(contract.scale)) + float(np.mean(contract.offset))
    low, high = float(np.min(contract.low)), float(np.max(contract.high))
    span = high - low
    if median < low - FAR * span or median > high + FAR * span:
        return f'its median value {median:g} (physical) lies far outside the trained range {low:g}..{high:g}'
    return None


def warn_if_far(card: dict | None, dtype: np.dtype, sample: np.ndarray | None) -> None:
    """One warning (Python shows a repeated one once) when the input is far from the card's contract."""
    reason = far_from_contract(card, dtype, sample) if card else None
    if reason:
        warnings.warn(f'the input differs from what these weights were trained on: {reason}; the output may be '
                      'meaningless (check the bands, units and scale of the input)', stacklevel=3)
