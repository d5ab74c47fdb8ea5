"""Where the network is unsure: does the self-ensemble's spread point at the real errors?"""

import numpy as np
from scipy import stats


def spread_error_correlation(spread: np.ndarray, output: np.ndarray, reference: np.ndarray) -> float:
    """Spearman rank correlation between per-pixel spread and absolute error (both band means, HWC).

    1: the spread ranks the pixels exactly as their errors do; 0: it says nothing about them. NaN when
    either is constant (a perfect output, or an ensemble whose 8 members agree everywhere).
    """
    spread = np.asarray(spread, dtype=np.float64)
    error = np.abs(np.asarray(output, dtype=np.float64) - np.asarray(reference, dtype=np.float64))
    spread, error = (a.mean(axis=-1) if a.ndim == 3 else a for a in (spread, error))
    if np.ptp(spread) == 0 or np.ptp(error) == 0:
        return float('nan')
    return float(stats.spearmanr(spread.ravel(), error.ravel()).statistic)
