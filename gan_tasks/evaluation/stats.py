"""The statistics of seeds, in one place (numpy and scipy.stats; no torch, no pandas). docs/statistics.md
states every test, its level and its correction; rankings.py, published.py and compare.py call these.

- Two samples of seeds: an exact permutation test of the difference of means (scipy.stats.permutation_test,
  every split enumerated) when a side has <= EXACT_MAX_SEEDS seeds or no spread; Welch's t-test
  otherwise. Fewer than 2 seeds on a side: NaN, "not assessable". Never p = 0 for finite samples.
- Multiplicity: Holm (family-wise) and Benjamini-Hochberg (false discovery rate), NaN-aware.
- Intervals: Student t of the mean, intersected with the metric's declared bounds.
- A measured sample against a published mean +- s.e. over its runs: Welch-Satterthwaite df, TOST.
Functions take arrays whose last axis is the seeds and broadcast over the leading axes, so the
calibration simulations run thousands of sweeps in one call.
"""
from __future__ import annotations

import itertools
import math
from collections import defaultdict

import numpy as np
from scipy import stats

ALPHA = 0.05  # level of every test and correction
EXACT_MAX_SEEDS = 5  # a side with this many seeds or fewer gets the exact permutation test
N_RESAMPLES = 9999  # random permutations where there are more distinct splits than this (seeded: reproducible)


def no_spread(x: np.ndarray) -> np.ndarray:
    """Whether the seeds (last axis) all agree, up to rounding."""
    x = np.asarray(x, dtype=float)
    return np.ptp(x, axis=-1) <= 1e-12 * np.maximum(1.0, np.abs(x).max(axis=-1))


def _mean_diff(x: np.ndarray, y: np.ndarray, axis: int = -1) -> np.ndarray:
    return x.mean(axis=axis) - y.mean(axis=axis)


def two_sample_p(a, b, alternative: str = "two-sided") -> np.ndarray | float:
    """p-value of mean(a) against mean(b), seeds on the last axis; alternative 'less': mean(a) < mean(b).
    Exact permutation test where a side has <= EXACT_MAX_SEEDS seeds or no spread, Welch otherwise."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    lead = np.broadcast_shapes(a.shape[:-1], b.shape[:-1])
    a, b = np.broadcast_to(a, lead + a.shape[-1:]), np.broadcast_to(b, lead + b.shape[-1:])
    out = np.full(lead, np.nan)
    if a.shape[-1] >= 2 and b.shape[-1] >= 2:
        exact = (min(a.shape[-1], b.shape[-1]) <= EXACT_MAX_SEEDS) | no_spread(a) | no_spread(b)
        if (~exact).any():
            out[~exact] = stats.ttest_ind(a[~exact], b[~exact], axis=-1, equal_var=False,
                                          alternative=alternative).pvalue
        if exact.any():
            out[exact] = stats.permutation_test((a[exact], b[exact]), _mean_diff, permutation_type="independent",
                                                vectorized=True, n_resamples=N_RESAMPLES, alternative=alternative,
                                                axis=-1, rng=np.random.default_rng(0)).pvalue
    return float(out) if out.ndim == 0 else out


def pvalues(pairs: list[tuple[np.ndarray, np.ndarray]], alternative: str = "two-sided") -> np.ndarray:
    """two_sample_p of each (a, b) pair of 1-D samples of any sizes, batched by size."""
    out = np.full(len(pairs), np.nan)
    groups = defaultdict(list)
    for i, (a, b) in enumerate(pairs):
        groups[(len(a), len(b))].append(i)
    for (na, nb), idx in groups.items():
        a = np.array([pairs[i][0] for i in idx], dtype=float).reshape(len(idx), na)
        b = np.array([pairs[i][1] for i in idx], dtype=float).reshape(len(idx), nb)
        out[idx] = two_sample_p(a, b, alternative)
    return out


def holm(p) -> np.ndarray:
    """Holm's step-down adjusted p-values along the last axis (family-wise error); NaN entries stay NaN
    and are not counted in the family."""
    p = np.asarray(p, dtype=float)
    missing = np.isnan(p)
    k = (~missing).sum(axis=-1, keepdims=True)
    order = np.argsort(np.where(missing, np.inf, p), axis=-1)
    ranked = np.take_along_axis(np.where(missing, 1.0, p), order, axis=-1)
    factor = np.maximum(k - np.arange(p.shape[-1]), 1)
    adj = np.minimum(1.0, np.maximum.accumulate(ranked * factor, axis=-1))
    out = np.empty_like(adj)
    np.put_along_axis(out, order, adj, axis=-1)
    return np.where(missing, np.nan, out)


def bh(p) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values along the last axis (scipy.stats.false_discovery_control);
    NaN entries stay NaN and are not counted."""
    p = np.asarray(p, dtype=float)
    if not np.isnan(p).any():
        return stats.false_discovery_control(p, axis=-1) if p.size else p.copy()
    out = np.full(p.shape, np.nan)
    for idx in np.ndindex(p.shape[:-1]):
        row, ok = p[idx], ~np.isnan(p[idx])
        if ok.any():
            out[idx][ok] = stats.false_discovery_control(row[ok])
    return out


def versus_best(values: list[np.ndarray], best: int) -> tuple[np.ndarray, np.ndarray]:
    """(raw p, adjusted p) of each cell against cell `best` (NaN for the best itself).

    The best is picked from the same data, so its comparisons are a data-chosen subset of all pairs of
    cells: Holm runs over all C(C-1)/2 pairs, which bounds P(any false "worse than the best") by ALPHA
    whichever cell comes out best. Holm over only the C-1 comparisons with the observed best flags
    10-16 % of metrics where 12 cells do not differ at all (6-20 seeds; tests/test_calibration.py)."""
    pairs = list(itertools.combinations(range(len(values)), 2))
    p = pvalues([(values[i], values[j]) for i, j in pairs])
    adj = holm(p) if len(p) else p
    raw, padj = np.full(len(values), np.nan), np.full(len(values), np.nan)
    for (i, j), pi, ai in zip(pairs, p, adj):
        if best in (i, j):
            other = j if i == best else i
            raw[other], padj[other] = pi, ai
    return raw, padj


def mean_ci(values, low: float | None = None, high: float | None = None,
            level: float = 0.95) -> tuple[float, float]:
    """Student t interval of the mean, intersected with [low, high] (the metric's bounds: the true mean
    lies within them, so the intersection keeps the coverage). NaN with < 2 seeds or no spread."""
    v = np.asarray(values, dtype=float)
    if len(v) < 2 or no_spread(v):
        return math.nan, math.nan
    half = stats.t.ppf(0.5 + level / 2, len(v) - 1) * v.std(ddof=1) / math.sqrt(len(v))
    lo, hi = float(v.mean() - half), float(v.mean() + half)
    return (max(lo, float(low)) if low is not None else lo), (min(hi, float(high)) if high is not None else hi)


def versus_summary(values, mean: float, se: float, runs: int) -> tuple[float, float, float]:
    """(difference, its s.e., Welch-Satterthwaite df) of our seeds' mean minus a published mean given
    as mean +- se over `runs` runs: both are samples, each summarised by its mean and s.e."""
    v = np.asarray(values, dtype=float)
    var_ours = v.var(ddof=1) / len(v) if len(v) > 1 else math.nan
    se_d = math.sqrt(var_ours + se ** 2)
    terms = (var_ours ** 2 / (len(v) - 1) if var_ours else 0.0) + (se ** 4 / (runs - 1) if se else 0.0)
    return float(v.mean() - mean), se_d, (se_d ** 4 / terms if terms else math.inf)


def diff_ci(diff, se, df, level: float = 0.95):
    """Interval diff -+ t(df) se: the one the verdicts decide on."""
    half = stats.t.ppf(0.5 + level / 2, df) * se
    return diff - half, diff + half


def tost_p(diff, se, df, margin):
    """Two one-sided tests of |true difference| < margin (Schuirmann): equivalent when p <= ALPHA,
    i.e. when the 90 % interval of the difference lies inside (-margin, margin). Broadcasts."""
    return np.maximum(stats.t.sf((diff + margin) / se, df), stats.t.cdf((diff - margin) / se, df))


def summary_p(m1: float, se1: float, m2: float, se2: float, runs: int) -> float:
    """Two-sided Welch p of two published means, each mean +- se over `runs` runs."""
    sd = math.sqrt(runs)
    return float(stats.ttest_ind_from_stats(m1, se1 * sd, runs, m2, se2 * sd, runs, equal_var=False).pvalue)


def smallest_exact_p(na: int, nb: int) -> float:
    """The smallest one-sided p an exact permutation test of na vs nb distinct seeds can give."""
    return 1.0 / math.comb(na + nb, na)


def detectable_shift(na: int, nb: int, level: float, power: float = 0.8) -> float:
    """Smallest one-sided shift, in units of the seeds' standard deviation, that na vs nb seeds detect
    with `power` at `level` (t approximation, equal variances); inf where the test used cannot reach
    `level` at all (exact permutation test with too few seeds, or a side with one seed)."""
    if na < 2 or nb < 2 or (min(na, nb) <= EXACT_MAX_SEEDS and smallest_exact_p(na, nb) > level):
        return math.inf
    df = na + nb - 2
    return float((stats.t.ppf(1 - level, df) + stats.t.ppf(power, df)) * math.sqrt(1 / na + 1 / nb))
