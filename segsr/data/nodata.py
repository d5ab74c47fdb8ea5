"""Nodata pixels filled before a network sees them, for training windows and inference tiles alike."""

import numpy as np
from scipy import ndimage


def fill_from_nearest_valid(values: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Replace nodata pixels of ``(C, h, w)`` values by their nearest valid neighbour, so no fill value bleeds
    into valid data."""
    if valid.all():
        return values
    if not valid.any():
        return np.zeros_like(values)
    nearest = ndimage.distance_transform_edt(~valid, return_distances=False, return_indices=True)
    return values[:, nearest[0], nearest[1]]
