"""Best-at-budget statistics of a search (docs/search.md; Lucic et al. 2018, Sec. 5): for a cell whose n sampled
settings scored x_1..x_n, the best score reachable with a tuning budget of k settings.

- expected best of k settings drawn without replacement from the n (exact, by order statistics): with the
  scores sorted worst to best, the i-th (1-based) is the best of the k with probability C(i-1, k-1) / C(n, k);
- a 95 % band by a bootstrap over settings (the n scores resampled with replacement, the expectation recomputed);
- for two cells, the probability that one's best of k beats the other's (ties count half), from the same
  exact distributions of the best.
A setting's score is the mean over its seeds of their results (gan_tasks/evaluation/seeds.py: completed
trials' final evaluations; a failed seed never counts, a setting without a completed seed has no score).
"""
from __future__ import annotations

import functools
import itertools
import math

import numpy as np
import pandas as pd

from gan_tasks.config.scores import DIRECTIONS, mean_ranks
from gan_tasks.evaluation.seeds import seed_results

N_BOOT = 2000  # bootstrap resamples of the settings; seeded, so a report is reproducible
LEVEL = 0.95


@functools.lru_cache(maxsize=64)  # pair_table asks for the same n for every pair of cells and every k
def best_weights(n: int) -> np.ndarray:
    """W[k-1, i]: probability that the (i+1)-th worst of n values is the best of k drawn without replacement
    (read-only: it is shared)."""
    w = np.zeros((n, n))
    for k in range(1, n + 1):
        total = math.comb(n, k)
        for i in range(k, n + 1):
            w[k - 1, i - 1] = math.comb(i - 1, k - 1) / total
    w.flags.writeable = False
    return w


def _oriented(values, higher: bool) -> np.ndarray:
    """Scores sorted worst to best, negated where lower is better (so 'best' is always the maximum)."""
    v = np.asarray(values, dtype=float)
    return np.sort(v if higher else -v)


def expected_best(values, higher: bool = True) -> np.ndarray:
    """E[best of k], k = 1..n, in the metric's own units."""
    v = _oriented(values, higher)
    e = best_weights(len(v)) @ v
    return e if higher else -e


def best_band(values, higher: bool = True, n_boot: int = N_BOOT, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(low, high): the central LEVEL band of E[best of k] over bootstrap resamples of the settings."""
    v = np.asarray(values, dtype=float)
    rng = np.random.default_rng(seed)
    boot = np.sort(rng.choice(v if higher else -v, size=(n_boot, len(v)), replace=True), axis=1)
    curves = boot @ best_weights(len(v)).T
    lo, hi = np.quantile(curves, [(1 - LEVEL) / 2, (1 + LEVEL) / 2], axis=0)
    return (lo, hi) if higher else (-hi, -lo)


def beat_probability(a, b, k: int, higher: bool = True) -> float:
    """P(best of k of a's settings is better than best of k of b's), ties counting half; NaN past either's n."""
    va, vb = _oriented(a, higher), _oriented(b, higher)
    if k > len(va) or k > len(vb):
        return math.nan
    pa, pb = best_weights(len(va))[k - 1], best_weights(len(vb))[k - 1]
    diff = va[:, None] - vb[None, :]
    return float(pa @ ((diff > 0) + 0.5 * (diff == 0)) @ pb)


def setting_scores(settings: pd.DataFrame, trials: pd.DataFrame, evaluations: pd.DataFrame) -> pd.DataFrame:
    """Per (cell, setting, metric): score (mean over completed seeds), seeds. `settings` maps trial_id to cell
    and setting (search/settings.parquet, stage 'search')."""
    cols = ["cell", "setting", "metric", "score", "seeds"]
    vals = seed_results(trials, evaluations, DIRECTIONS).drop(columns=["cell", "setting"], errors="ignore")
    vals = vals.merge(settings[["trial_id", "cell", "setting"]], on="trial_id")
    if vals.empty:
        return pd.DataFrame(columns=cols)
    g = vals.groupby(["cell", "setting", "metric"], sort=True).value
    return pd.DataFrame({"score": g.mean(), "seeds": g.size()}).reset_index()[cols]


def best_settings(scores: pd.DataFrame, metric: str | tuple[str, ...]) -> dict[str, int]:
    """Each cell's best setting (what the confirm stage re-runs): on `metric`, or by mean rank over several
    metrics (each in its direction, ties sharing a rank, a missing score the worst); ties: the lower index."""
    metrics = (metric,) if isinstance(metric, str) else tuple(metric)
    out = {}
    for cell, g in scores[scores.metric.isin(metrics)].groupby("cell", sort=True):
        table = g.pivot(index="setting", columns="metric", values="score").reindex(columns=list(metrics))
        out[cell] = int(table.index[int(np.argmin(mean_ranks({m: table[m] for m in metrics}, metrics)))])
    return out


def curve_table(scores: pd.DataFrame, sweep_id: str) -> pd.DataFrame:
    """budget_curves: per (cell, metric, k): settings (n scored), expected_best, ci95_low, ci95_high."""
    rows = []
    for (cell, metric), g in scores.groupby(["cell", "metric"], sort=True):
        higher = DIRECTIONS[metric]
        e = expected_best(g.score, higher)
        lo, hi = best_band(g.score, higher)
        rows += [{"sweep_id": sweep_id, "cell": cell, "metric": metric, "k": k + 1, "settings": len(g),
                  "expected_best": e[k], "ci95_low": lo[k], "ci95_high": hi[k], "higher_is_better": higher}
                 for k in range(len(g))]
    return pd.DataFrame(rows, columns=["sweep_id", "cell", "metric", "k", "settings", "expected_best", "ci95_low",
                                       "ci95_high", "higher_is_better"])


def pair_table(scores: pd.DataFrame, sweep_id: str) -> pd.DataFrame:
    """Per (metric, cell_a, cell_b, k): p_a_beats_b, over every ordered pair of cells."""
    rows = []
    for metric, m in scores.groupby("metric", sort=True):
        by_cell = {c: g.score.to_numpy() for c, g in m.groupby("cell", sort=True)}
        for a, b in itertools.permutations(by_cell, 2):
            for k in range(1, min(len(by_cell[a]), len(by_cell[b])) + 1):
                rows.append({"sweep_id": sweep_id, "metric": metric, "cell_a": a, "cell_b": b, "k": k,
                             "p_a_beats_b": beat_probability(by_cell[a], by_cell[b], k, DIRECTIONS[metric])})
    return pd.DataFrame(rows, columns=["sweep_id", "metric", "cell_a", "cell_b", "k", "p_a_beats_b"])
