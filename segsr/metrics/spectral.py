"""Spectral metrics on (C, H, W) band stacks."""

import numpy as np


def spectral_angle_degrees(output: np.ndarray, reference: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Mean angle, in degrees, between the per-pixel band vectors of ``output`` and ``reference`` (SAM).

    Brightness changes leave the angle at 0; a change of band ratios (a colour or material change) does
    not. Pixels where either vector is zero have no direction and are left out, as are pixels outside
    ``mask`` (H, W); NaN when none is left.
    """
    a = np.asarray(output, dtype=np.float64).reshape(output.shape[0], -1)
    b = np.asarray(reference, dtype=np.float64).reshape(reference.shape[0], -1)
    norms = np.linalg.norm(a, axis=0) * np.linalg.norm(b, axis=0)
    keep = norms > 0
    if mask is not None:
        keep &= np.asarray(mask, dtype=bool).reshape(-1)
    if not keep.any():
        return float('nan')
    cosine = np.clip((a[:, keep] * b[:, keep]).sum(axis=0) / norms[keep], -1.0, 1.0)
    return float(np.degrees(np.arccos(cosine)).mean())
