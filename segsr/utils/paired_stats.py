"""Is a difference between two runs on the same images real? Paired bootstrap interval and Wilcoxon test.

Methods 0.1-0.3 dB apart are told apart by how consistently one beats the other image by image, not
by two averages: the interval is a percentile bootstrap of the mean per-image difference (resampled
over images, fixed seed so a table is reproducible), the test scipy's paired Wilcoxon signed-rank.
"""

import math
from collections import defaultdict
from dataclasses import dataclass

import numpy as np
from scipy import stats

from segsr.utils.errors import SegSRError

CONFIDENCE = 0.95
RESAMPLES = 10000
SEED = 0


@dataclass(frozen=True)
class PairedDifference:
    """Mean of ``b - a`` over paired images, its bootstrap interval, the Wilcoxon p-value, wins and losses."""

    images: int
    mean: float
    low: float
    high: float
    p_value: float
    better: int
    worse: int

    def interval_text(self, digits: int = 3) -> str:
        if math.isnan(self.low):
            return 'n/a'
        return f'[{self.low:+.{digits}f}, {self.high:+.{digits}f}]'


def paired_difference(a: list[float], b: list[float]) -> PairedDifference:
    """Statistics of ``b[i] - a[i]``; intervals and p-values need at least two images (NaN otherwise)."""
    diffs = np.asarray(b, dtype=np.float64) - np.asarray(a, dtype=np.float64)
    better, worse = int((diffs > 0).sum()), int((diffs < 0).sum())
    mean = float(diffs.mean()) if diffs.size else math.nan
    if diffs.size < 2:
        return PairedDifference(int(diffs.size), mean, math.nan, math.nan, math.nan, better, worse)
    if np.ptp(diffs) == 0:
        low = high = mean
    else:
        interval = stats.bootstrap((diffs,), np.mean, confidence_level=CONFIDENCE, n_resamples=RESAMPLES,
                                   method='percentile', random_state=SEED).confidence_interval
        low, high = float(interval.low), float(interval.high)
    p_value = 1.0 if not diffs.any() else float(stats.wilcoxon(diffs).pvalue)
    return PairedDifference(int(diffs.size), mean, low, high, p_value, better, worse)


def pair_images(a_rows: list[dict], b_rows: list[dict], source: str) -> list[tuple[dict, dict]]:
    """Rows of the same images in two runs, matched by name; both runs must cover the same images."""
    a_by_name, b_by_name = ({row['image']: row for row in rows} for rows in (a_rows, b_rows))
    if a_by_name.keys() != b_by_name.keys():
        only_a, only_b = len(a_by_name.keys() - b_by_name), len(b_by_name.keys() - a_by_name)
        raise SegSRError(f'{source}: the two runs scored different images ({only_a} only in the first, {only_b} only '
                         'in the second); evaluate both on the same test set')
    return [(a_by_name[name], b_by_name[name]) for name in sorted(a_by_name)]


def compare_metric(pairs: list[tuple[dict, dict]], metric: str) -> PairedDifference:
    usable = [(a[metric], b[metric]) for a, b in pairs if metric in a and metric in b]
    return paired_difference([a for a, _ in usable], [b for _, b in usable])


def compare_per_class(pairs: list[tuple[dict, dict]], metric: str) -> dict[str, PairedDifference]:
    groups: dict[str, list[tuple[dict, dict]]] = defaultdict(list)
    for a, b in pairs:
        if 'class' in a:
            groups[str(a['class'])].append((a, b))
    return {name: compare_metric(group, metric) for name, group in sorted(groups.items())}
