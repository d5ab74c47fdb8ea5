"""Per-scene maps of source values into the network's working range, for networks without a radiometric
contract (see :mod:`segsr.radiometry.contract`, whose :class:`BandStretch` they build).

The map is affine per band and inverted exactly: values outside the reference range (a bright roof
above the 99.5th percentile, a DEM below sea level) go to the network outside [0, 1] and come back
where they were. Only the output dtype's own range limits what is written.
"""

import numpy as np

from segsr.radiometry.contract import BandStretch


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
