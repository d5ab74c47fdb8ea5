"""The one gate every door (the Python API, segsr-infer, segsr-test and the datasets) sends pixels through.

Values are physical measurements: integers or floats. Anything else (complex, boolean, text, Python objects)
has no faithful map into a network's range, and an empty or 4-D array is no image; each is refused with one line
naming the problem and the fix, before any value is converted or any file written.
"""

import numpy as np

from segsr.utils.errors import SegSRError

MEASUREMENT_KINDS = 'iuf'
KIND_NAMES = {'b': 'boolean', 'O': 'Python object', 'U': 'text', 'S': 'byte-string', 'V': 'structured',
              'M': 'date', 'm': 'time-span'}


def check_dtype(dtype: object, what: str) -> np.dtype:
    """``dtype`` as a numpy dtype when it holds measurements (integers or floats); else one-line refusal."""
    dtype = np.dtype(dtype)
    if dtype.kind in MEASUREMENT_KINDS:
        return dtype
    if dtype.kind == 'c':
        raise SegSRError(f'{what} holds complex values ({dtype}), which a super-resolution network does not take: '
                         'pass the amplitude (or the real and imaginary parts as two bands)')
    kind = KIND_NAMES.get(dtype.kind, dtype.kind)
    raise SegSRError(f'{what} holds {kind} values ({dtype}), not measurements: pass integer or float values')


def check_shape(shape: tuple[int, ...], what: str) -> None:
    """An image is ``(H, W)`` or three axes (bands and two spatial ones) with at least one value along each."""
    if len(shape) not in (2, 3):
        raise SegSRError(f'{what} has shape {tuple(shape)}, which is not an image: pass (H, W), (C, H, W) or (H, W, C)')
    if 0 in shape:
        raise SegSRError(f'{what} has shape {tuple(shape)}, which holds no pixels: pass at least one pixel and band')


def check_pixels(array: object, what: str) -> np.ndarray:
    """``array`` as a numpy array that passes the gate: measurement dtype and an image's shape."""
    values = np.asarray(array)
    check_dtype(values.dtype, what)
    check_shape(values.shape, what)
    return values
