"""Mapping source pixel values into the network's [0, 1] range and back to the source dtype."""

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class BandStretch:
    """A per-band linear map: ``low`` goes to 0 and ``high`` to 1; values outside saturate."""

    low: np.ndarray
    high: np.ndarray

    def to_unit(self, values: np.ndarray) -> np.ndarray:
        """``(C, h, w)`` source values -> float32 in [0, 1]."""
        low, span = self._columns()
        return np.clip((values.astype(np.float32) - low) / span, 0, 1)

    def from_unit(self, values: np.ndarray, dtype: np.dtype) -> np.ndarray:
        """``(C, h, w)`` network output -> source dtype, rounded and clipped for integer types."""
        low, span = self._columns()
        restored = np.clip(values, 0, 1) * span + low
        dtype = np.dtype(dtype)
        if dtype.kind in 'iu':
            info = np.iinfo(dtype)
            restored = np.clip(np.rint(restored), info.min, info.max)
        return restored.astype(dtype)

    def _columns(self) -> tuple[np.ndarray, np.ndarray]:
        low = self.low.astype(np.float32)[:, None, None]
        span = np.maximum(self.high - self.low, 1e-12).astype(np.float32)[:, None, None]
        return low, span


def dtype_range_stretch(dtype: np.dtype, bands: int) -> BandStretch:
    """Full dtype range (0..255, 0..65535); floats are taken to be in [0, 1] already."""
    dtype = np.dtype(dtype)
    high = float(np.iinfo(dtype).max) if dtype.kind in 'iu' else 1.0
    low = float(np.iinfo(dtype).min) if dtype.kind == 'i' else 0.0
    return BandStretch(np.full(bands, low), np.full(bands, high))


def percentile_stretch(sample: np.ma.MaskedArray, low_percent: float, high_percent: float) -> BandStretch:
    """Per-band percentiles of the valid pixels of a ``(C, h, w)`` sample of the scene."""
    lows, highs = [], []
    for band in sample:
        valid = np.ma.compressed(band)
        if valid.size == 0:
            lows.append(0.0)
            highs.append(1.0)
            continue
        low, high = np.percentile(valid, [low_percent, high_percent])
        lows.append(float(low))
        highs.append(float(high) if high > low else float(low) + 1.0)
    return BandStretch(np.asarray(lows), np.asarray(highs))
