"""Comparisons with the HR reference beyond PSNR: shift/bias-tolerant cPSNR, and where the added detail is right.

Images are float HWC arrays with values in [0, 1].
"""

import numpy as np

from segsr.metrics.consistency import psnr


def cpsnr(output: np.ndarray, reference: np.ndarray, max_shift: int = 3) -> float:
    """PSNR at the best integer shift (|dy|, |dx| <= ``max_shift``) and the best per-band brightness bias.

    As in the PROBA-V challenge: the reference is cropped by ``max_shift`` on every side, the output window
    slides over it, each band's mean difference (the bias that minimises the squared error) is removed,
    and the highest PSNR wins. A sub-pixel misregistration or a brightness offset between sensors is not
    counted as an error; anything else is.
    """
    out = np.asarray(output, dtype=np.float64)
    ref = np.asarray(reference, dtype=np.float64)
    height, width = ref.shape[:2]
    if min(height, width) <= 2 * max_shift:
        raise ValueError(f'a {height}x{width} image is too small for shifts up to {max_shift} pixels')
    target = ref[max_shift:height - max_shift, max_shift:width - max_shift]
    best = -np.inf
    for dy in range(-max_shift, max_shift + 1):
        for dx in range(-max_shift, max_shift + 1):
            window = out[max_shift + dy:height - max_shift + dy, max_shift + dx:width - max_shift + dx]
            difference = target - window
            difference = difference - difference.mean(axis=(0, 1), keepdims=True)
            best = max(best, psnr(difference, np.zeros_like(difference)))
    return float(best)


def detail_shares(output: np.ndarray, reference: np.ndarray, bicubic: np.ndarray,
                  tolerance: float = 0.01) -> dict[str, float]:
    """Shares of the image's pixels where the output improved on, omitted, or hallucinated detail.

    Per pixel (distances are band-mean absolute differences): the output *changed* the bicubic
    upsampling when |SR - bicubic| > ``tolerance``. A changed pixel is an *improvement* when it is
    closer to the HR than bicubic is, a *hallucination* otherwise (it moved away from the HR, including
    new structure where the HR is as smooth as bicubic). An unchanged pixel is an *omission* when the
    HR differs from bicubic by more than ``tolerance`` (detail there was left as blur); the rest
    (nothing to add, nothing added) counts in none. Each share is over all pixels.
    """
    out, ref, bic = (np.asarray(a, dtype=np.float64) for a in (output, reference, bicubic))
    change = np.abs(out - bic).mean(axis=-1)
    error = np.abs(out - ref).mean(axis=-1)
    bicubic_error = np.abs(bic - ref).mean(axis=-1)
    changed = change > tolerance
    return {
        'improvement': float((changed & (error < bicubic_error)).mean()),
        'hallucination': float((changed & (error >= bicubic_error)).mean()),
        'omission': float((~changed & (bicubic_error > tolerance)).mean()),
    }
