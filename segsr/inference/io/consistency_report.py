"""How well a written output, degraded again, gives back its input: a JSON report beside the output.

A practitioner without HR still learns whether the network invented radiometry. The output file (as
written: source dtype, rounding and all) is degraded with the training degradation and compared with
the input bands it came from, on the pixels valid in the input and not next to its nodata. Values are
in the input's units; a ``to_physical`` map turns them into physical ones for the MAE. The scene is
read whole.
"""

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
from scipy import ndimage

from segsr.degradations.bicubic import bicubic_downscale
from segsr.inference.io.inputs import InputFile, open_source
from segsr.metrics.consistency import psnr
from segsr.metrics.spectral import spectral_angle_degrees
from segsr.utils.files import atomic_write_bytes

FOOTPRINT = 2  # LR pixels each way that the x-scale bicubic degradation of one LR pixel reads


def peak_value(lr: np.ndarray, valid: np.ndarray, dtype: np.dtype) -> float:
    """The PSNR's peak: 255 for 8-bit data, else the range the input's valid values span."""
    if dtype == np.uint8:
        return 255.0
    values = lr[:, valid]
    return float(values.max() - values.min()) or 1.0


def scene_consistency(planned: InputFile, bands: list[int], scale: int,
                      to_physical: Callable[[np.ndarray], np.ndarray] | None = None, written: Path | None = None
                      ) -> dict:
    """PSNR, MAE and (3+ bands) spectral angle of the written output degraded x``scale`` against the input.

    ``written``: where the output is read from, when that is not yet ``planned.image`` (its finished
    temporary file, before it is published)."""
    source, output = open_source(planned.source), open_source(written or planned.image)
    try:
        lr = source.read(bands, 0, source.height, 0, source.width).astype(np.float64)
        valid = source.read_valid(bands, 0, source.height, 0, source.width)
        written = output.read(list(range(len(bands))), 0, output.height, 0, output.width).astype(np.float32)
        dtype = source.dtype
    finally:
        source.close()
        output.close()
    # LR pixels whose bicubic footprint (two LR pixels each way) reaches nodata would score the fill, not the output.
    valid = np.ones(lr.shape[1:], dtype=bool) if valid is None else ndimage.binary_erosion(
        valid.all(axis=0), iterations=FOOTPRINT, border_value=1)
    degraded = bicubic_downscale(np.nan_to_num(written).transpose(1, 2, 0), scale).transpose(2, 0, 1)
    degraded = degraded.astype(np.float64)
    physical = to_physical or (lambda values: values)
    return {
        'input': str(planned.source), 'output': str(planned.image), 'scale': scale,
        'bands': [band + 1 for band in bands], 'valid_pixels': int(valid.sum()),
        'psnr': psnr(degraded[:, valid], lr[:, valid], peak_value(lr, valid, dtype)),
        'mae': float(np.mean(np.abs(physical(degraded[:, valid]) - physical(lr[:, valid])))),
        'sam_degrees': spectral_angle_degrees(degraded, lr, valid) if len(bands) >= 3 else None,
        'units': 'physical' if to_physical else 'input values',
    }


def write_consistency_report(planned: InputFile, bands: list[int], scale: int, written: Path | None = None) -> Path:
    """The report of :func:`scene_consistency` written to ``planned.report`` (replacing a file of that name only
    when ``planned.overwrite``); returns its path."""
    report = scene_consistency(planned, bands, scale, written=written)
    atomic_write_bytes(planned.report, (json.dumps(report, indent=2) + '\n').encode(), replace=planned.overwrite)
    return planned.report
