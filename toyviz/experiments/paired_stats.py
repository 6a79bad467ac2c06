"""Paired statistics over seeds for the report's verdicts: the paired mean difference ± its standard error, and
the two-sided exact sign test (no scipy needed).

Sign test (e.g. Conover, *Practical Nonparametric Statistics*, §3.4): of the n seeds whose difference is not 0,
k = min(more, fewer); under "no effect" each is more or fewer with probability ½, so
p = min(1, 2 · Σ_{i=0..k} C(n, i) / 2ⁿ); seeds with a difference of 0 are left out. It assumes nothing about
the differences' distribution, which suits 10 seeds of a bimodal number like modes captured.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

SIGNIFICANCE = 0.05          # "not significant" when p ≥ this


def sign_test(more: int, fewer: int) -> float:
    """Two-sided exact sign test p-value for `more` positive and `fewer` negative paired differences (1.0 when
    there are none)."""
    if more < 0 or fewer < 0:
        raise ValueError(f"sign_test needs counts ≥ 0 (got {more}, {fewer})")
    n, k = more + fewer, min(more, fewer)
    if n == 0:
        return 1.0
    return min(1.0, 2 * sum(math.comb(n, i) for i in range(k + 1)) / 2 ** n)


@dataclass
class Paired:
    """Per-seed differences (other − base) of one number: counts, mean ± s.e. and the sign test."""
    more: int
    same: int
    fewer: int
    mean: float            # mean difference; inf when a difference is infinite, NaN with no seed
    se: float              # s/√n (s with n−1); NaN for one seed
    p: float               # two-sided sign test

    @property
    def significant(self) -> bool:
        return self.p < SIGNIFICANCE


def mean_se(values) -> tuple[float, float]:
    """Mean and standard error s/√n (s with n−1) of the values that were logged (NaN = not logged, left out);
    se is NaN for one value; the mean is inf if any value is inf."""
    v = np.asarray(values, dtype=np.float64)
    v = v[~np.isnan(v)]
    if len(v) == 0:
        return math.nan, math.nan
    if not np.all(np.isfinite(v)):
        return math.inf, math.nan
    return float(v.mean()), float(v.std(ddof=1) / math.sqrt(len(v))) if len(v) > 1 else math.nan


def paired_differences(diffs) -> Paired:
    """The summary of per-seed differences `diffs` (NaN = not logged on that seed: left out)."""
    d = np.asarray(diffs, dtype=np.float64)
    d = d[~np.isnan(d)]
    more, fewer = int(np.sum(d > 0)), int(np.sum(d < 0))
    return Paired(more, len(d) - more - fewer, fewer, *mean_se(d), sign_test(more, fewer))


def p_text(p: float) -> str:
    """`p = 0.18 (not significant)` or `p = 0.004`: two significant digits, the verdict named when p ≥ 0.05."""
    text = f"sign test p = {p:.2g}" if p >= 0.001 else "sign test p < 0.001"
    return text + (" (not significant)" if p >= SIGNIFICANCE else "")
