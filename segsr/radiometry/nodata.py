"""Nodata pixels filled before a network sees them, for training windows and inference tiles alike."""

import numpy as np
from scipy import ndimage


def fill_from_nearest_valid(values: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Replace nodata pixels of ``(C, h, w)`` values by their nearest valid neighbour, so no fill value bleeds
    into valid data. ``valid`` is ``(h, w)`` (one mask for every band) or ``(C, h, w)`` (band by band, as GDAL's
    per-band masks); a band with no valid pixel is zero."""
    if valid.all():
        return values
    masks = np.broadcast_to(valid, values.shape)
    filled = np.zeros_like(values)
    for band, band_valid in enumerate(masks):
        if band_valid.all():
            filled[band] = values[band]
        elif band_valid.any():
            nearest = ndimage.distance_transform_edt(~band_valid, return_distances=False, return_indices=True)
            filled[band] = values[band][nearest[0], nearest[1]]
    return filled
