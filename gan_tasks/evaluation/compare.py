"""Compare two sweeps of the same config: per (loss, optimizer, metric) the change of the seed mean,
flagged when it leaves the 95 % confidence interval of the seeds."""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from gan_tasks.evaluation.report import load_frames
from gan_tasks.evaluation.seeds import seed_counts, seed_results
from gan_tasks.data.storage import Storage
from gan_tasks.config.early_stop import DIRECTIONS


def cell_stats(storage: Storage, sweep_id: str) -> pd.DataFrame:
    """Mean, std and 95 % CI half-width (Student t over seeds) per (loss, optimizer, metric), over the seeds'
    results (gan_tasks/evaluation/seeds.py: completed trials' final evaluations), with the cell's
    seeds_failed; a cell without a result of a metric the sweep measured has a row too (seeds 0)."""
    f = load_frames(storage, sweep_id)
    df = seed_results(f["trials"], f["evaluations"])
    if df.empty:
        return pd.DataFrame(columns=["loss", "optimizer", "metric", "mean", "std", "ci95", "seeds", "seeds_failed"])
    out = df.groupby(["loss", "optimizer", "metric"])["value"].agg(mean="mean", std="std", seeds="size").reset_index()
    cells = f["trials"][["loss", "optimizer"]].drop_duplicates().merge(out[["metric"]].drop_duplicates(), how="cross")
    out = cells.merge(out, how="left").fillna({"seeds": 0}).astype({"seeds": int})
    out = out.merge(seed_counts(f["trials"])[["loss", "optimizer", "seeds_failed"]], on=["loss", "optimizer"])
    t = stats.t.ppf(0.975, np.maximum(out.seeds - 1, 1))
    out["ci95"] = np.where(out.seeds > 1, t * out["std"] / np.sqrt(out.seeds), np.nan)
    return out


def compare(storage: Storage, a: str, b: str) -> pd.DataFrame:
    """Rows of (loss, optimizer, metric, mean_a, mean_b, delta, ci95, flagged)."""
    sa, sb = cell_stats(storage, a), cell_stats(storage, b)
    m = sa.merge(sb, on=["loss", "optimizer", "metric"], suffixes=("_a", "_b"), how="outer")
    # a metric undefined on both nights (reverse_kl_hq of a trial with no high-quality sample) did not move
    m = m[~(m.mean_a.isna() & m.mean_b.isna())].reset_index(drop=True)
    m["delta"] = m.mean_b - m.mean_a
    m["ci95"] = m[["ci95_a", "ci95_b"]].max(axis=1)
    # Without a CI (one seed) any change is flagged: there is no evidence it is noise.
    m["flagged"] = m.delta.abs() > m.ci95.fillna(0)
    return m[["loss", "optimizer", "metric", "mean_a", "mean_b", "delta", "ci95", "flagged"]]


# Which way is better, per metric (early_stop.DIRECTIONS, the one table): a change the wrong way
# beyond the CI is a regression.
HIGHER_IS_BETTER = DIRECTIONS


def regressions(cmp: pd.DataFrame) -> pd.DataFrame:
    sign = cmp.metric.map(lambda m: 1 if HIGHER_IS_BETTER.get(m, True) else -1)
    return cmp[cmp.flagged & (cmp.delta * sign < 0)]


def previous_sweep(storage: Storage, name: str, current: str) -> str | None:
    """The newest sweep of the same config name before `current` (ids sort by their timestamp)."""
    ids = [s for s in storage.ls("sweeps") if s.startswith(f"{name}-") and s < current]
    return max(ids) if ids else None
