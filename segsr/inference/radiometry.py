"""Mapping source pixel values into the network's working range and back, without losing any value.

The map is affine per band and inverted exactly: values outside the reference range (a bright roof
above the 99.5th percentile, a DEM below sea level) go to the network outside [0, 1] and come back
where they were. Only the output dtype's own range limits what is written.
"""

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class BandStretch:
    """A per-band affine map: ``low`` goes to 0 and ``high`` to 1; nothing saturates."""

    low: np.ndarray
    high: np.ndarray

    def to_unit(self, values: np.ndarray) -> np.ndarray:
        """``(C, h, w)`` source values -> float32, [0, 1] for values inside the reference range."""
        low, span = self._columns()
        return ((values.astype(np.float64) - low) / span).astype(np.float32)

    def from_unit(self, values: np.ndarray, dtype: np.dtype) -> np.ndarray:
        """``(C, h, w)`` network output -> source dtype; integers are rounded, and every type is
        clamped to its own range only (a uint16 cannot hold -3 or 70000, a float32 cannot hold 1e39)."""
        low, span = self._columns()
        restored = values.astype(np.float64) * span + low
        dtype = np.dtype(dtype)
        info = np.iinfo(dtype) if dtype.kind in 'iu' else np.finfo(dtype)
        if dtype.kind in 'iu':
            restored = np.rint(restored)
        return np.clip(restored, info.min, info.max).astype(dtype)

    def select(self, positions: list[int]) -> 'BandStretch':
        """The maps of some of the bands, in the given order."""
        return BandStretch(self.low[positions], self.high[positions])

    def _columns(self) -> tuple[np.ndarray, np.ndarray]:
        low = self.low.astype(np.float64)[:, None, None]
        span = np.maximum(self.high - self.low, 1e-12).astype(np.float64)[:, None, None]
        return low, span


def unsigned_range_stretch(dtype: np.dtype, bands: int) -> BandStretch:
    """0..255 or 0..65535: what 8-bit networks were trained on, and a fixed scale for unsigned counts."""
    return BandStretch(np.zeros(bands), np.full(bands, float(np.iinfo(np.dtype(dtype)).max)))


def data_range_stretch(sample: np.ma.MaskedArray) -> BandStretch:
    """Per-band min..max of the valid pixels: for signed and float data, whose dtype range says nothing."""
    return percentile_stretch(sample, 0.0, 100.0)


def percentile_stretch(sample: np.ma.MaskedArray, low_percent: float, high_percent: float) -> BandStretch:
    """Per-band percentiles of the valid (masked-in, finite) pixels of a ``(C, h, w)`` sample of the scene."""
    lows, highs = [], []
    for band in sample:
        valid = np.ma.compressed(band).astype(np.float64)
        valid = valid[np.isfinite(valid)]
        if valid.size == 0:
            lows.append(0.0)
            highs.append(1.0)
            continue
        low, high = np.percentile(valid, [low_percent, high_percent])
        lows.append(float(low))
        highs.append(float(high) if high > low else float(low) + 1.0)
    return BandStretch(np.asarray(lows), np.asarray(highs))
