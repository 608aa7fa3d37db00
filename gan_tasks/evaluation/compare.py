"""Compare two sweeps of the same config (last night A, tonight B): per (loss, optimizer, metric), is B
worse than A beyond what its seeds' noise explains?

Score metrics only (gan_tasks/config/scores.py; not modes_total, kid_std, ...). Per row a one-sided
test in the metric's worse direction: an exact permutation test (<= 5 seeds on a side or no spread) or
Welch's t-test (gan_tasks/evaluation/stats.py); Benjamini-Hochberg over every tested row of the night;
`flagged` when p_adj <= 0.05. A side with one seed is "not assessable", never flagged. A cell (or a
metric) with values last night and none tonight is a regression, as is a cell with more failed seeds
than last night. Image metrics whose provenance differs between (or within) the nights are not tested:
the note says why ("FID not comparable: n_real 500 vs 1000"), never a regression. detectable() says per metric
how large a worsening its seeds could find; code_changes() puts each night's plugin code per cell side by side
(the trials' `plugins` column).
"""
from __future__ import annotations

import json

import numpy as np
import pandas as pd

from gan_tasks.config.scores import DIRECTIONS
from gan_tasks.data.storage import Storage
from gan_tasks.evaluation import provenance, stats
from gan_tasks.evaluation.rankings import cell_frame
from gan_tasks.evaluation.report import load_frames
from gan_tasks.evaluation.seeds import seed_counts, seed_results

COLUMNS = ["loss", "optimizer", "metric", "seeds_a", "seeds_b", "mean_a", "mean_b", "delta", "std_a", "std_b",
           "p_value", "p_adj", "flagged", "note"]


def cell_stats(storage: Storage, sweep_id: str) -> pd.DataFrame:
    """Per (loss, optimizer, score metric): the seeds' results (gan_tasks/evaluation/seeds.py: completed
    trials' final evaluations), their mean, std and count, and the cell's failed seeds."""
    f = load_frames(storage, sweep_id)
    cols = ["loss", "optimizer", "metric", "values", "mean", "std", "seeds", "seeds_failed", "provenance"]
    df = seed_results(f["trials"], f["evaluations"], DIRECTIONS)
    if df.empty:
        return pd.DataFrame(columns=cols)
    df = df.assign(provenance=df.provenance.fillna("") if "provenance" in df else "")
    out = df.groupby(["loss", "optimizer", "metric"]).agg(
        values=("value", lambda v: v.to_numpy(dtype=float)), mean=("value", "mean"), std=("value", "std"),
        seeds=("value", "size"), provenance=("provenance", lambda p: tuple(dict.fromkeys(p)))).reset_index()
    failed = seed_counts(f["trials"])[["loss", "optimizer", "seeds_failed"]]
    return out.merge(failed, on=["loss", "optimizer"], how="left")[cols]


def compare_cells(sa: pd.DataFrame, sb: pd.DataFrame) -> pd.DataFrame:
    """The comparison (COLUMNS) of two nights' cell_stats: A last night, B tonight."""
    m = sa.merge(sb, on=["loss", "optimizer", "metric"], suffixes=("_a", "_b"), how="outer")
    m["delta"] = m.mean_b - m.mean_a
    why = [provenance.difference(x, (pa or ()) + (pb or ())) if isinstance(pa, tuple) and isinstance(pb, tuple)
           else None for x, pa, pb in zip(m.metric, m.get("provenance_a", [None] * len(m)),
                                          m.get("provenance_b", [None] * len(m)))]
    refused = np.array([w is not None for w in why], dtype=bool)
    worse = ["less" if DIRECTIONS[x] else "greater" for x in m.metric]  # tonight below / above last night
    p = np.full(len(m), np.nan)
    for alternative in ("less", "greater"):
        idx = [i for i, w in enumerate(worse) if w == alternative and isinstance(m["values_a"].iloc[i], np.ndarray)
               and isinstance(m["values_b"].iloc[i], np.ndarray) and not refused[i]]
        p[idx] = stats.pvalues([(m["values_b"].iloc[i], m["values_a"].iloc[i]) for i in idx], alternative)
    m["p_value"], m["p_adj"] = p, stats.bh(p)
    missing = m.seeds_b.isna() & m.seeds_a.notna()
    m["flagged"] = (m.p_adj <= stats.ALPHA) | missing
    m["note"] = np.select([missing, m.seeds_a.isna(), refused, m.p_value.isna()],
                          ["missing tonight", "new tonight", np.array([w or "" for w in why], dtype=object),
                           "not assessable (1 seed)"], "")
    cells = m.groupby(["loss", "optimizer"])[["seeds_failed_a", "seeds_failed_b"]].max().reset_index()
    more = cells[cells.seeds_failed_b.fillna(0) > cells.seeds_failed_a.fillna(0)]
    extra = pd.DataFrame({"loss": more.loss, "optimizer": more.optimizer, "metric": "seeds_failed",
                          "mean_a": more.seeds_failed_a, "mean_b": more.seeds_failed_b, "flagged": True,
                          "note": "more failed seeds than last night"})
    m = pd.concat([m, extra], ignore_index=True) if len(extra) else m
    m["delta"] = m.mean_b - m.mean_a
    m["flagged"] = m.flagged.fillna(False).astype(bool)
    return m[COLUMNS].sort_values(["loss", "optimizer", "metric"]).reset_index(drop=True)


def compare(storage: Storage, a: str, b: str) -> pd.DataFrame:
    """compare_cells of two stored sweeps (A last night, B tonight)."""
    return compare_cells(cell_stats(storage, a), cell_stats(storage, b))


def _code(plugins: object) -> str:
    """'dist version code-hash' of each distribution in a trials row's `plugins` ('' for built-ins only)."""
    used = json.loads(plugins) if isinstance(plugins, str) and plugins else []
    return ", ".join(sorted({f"{p['dist']} {p['version']} {p['code_hash']}" for p in used}))


def cell_code(storage: Storage, sweep_id: str) -> pd.DataFrame:
    """Per (loss, optimizer): the plugin code its trials used (`code`, '' for built-ins only)."""
    t = storage.read_table("sweeps", sweep_id, "trials")
    df = cell_frame(t.to_pandas()) if t is not None else pd.DataFrame()
    if df.empty:
        return pd.DataFrame(columns=["loss", "optimizer", "code"])
    df["code"] = df.plugins.map(_code) if "plugins" in df else ""
    return df.groupby(["loss", "optimizer"]).code.agg(lambda v: " | ".join(sorted(set(v)))).reset_index()


def code_changes(storage: Storage, a: str, b: str) -> pd.DataFrame:
    """Each cell's plugin code in A and B side by side (loss, optimizer, code_a, code_b, changed); empty
    when neither night used a plugin. `changed`: the cell ran on both nights with different code."""
    m = cell_code(storage, a).merge(cell_code(storage, b), on=["loss", "optimizer"], suffixes=("_a", "_b"),
                                    how="outer")
    if not (m.code_a.fillna("") + m.code_b.fillna("")).str.len().any():
        return pd.DataFrame(columns=["loss", "optimizer", "code_a", "code_b", "changed"])
    m["changed"] = m.code_a.notna() & m.code_b.notna() & (m.code_a != m.code_b)
    return m.sort_values(["loss", "optimizer"]).reset_index(drop=True)


def regressions(cmp: pd.DataFrame) -> pd.DataFrame:
    """The rows that fail a night: flagged after the correction, a cell missing tonight, more failed seeds."""
    return cmp[cmp.flagged]


def detectable(cmp: pd.DataFrame, power: float = 0.8) -> pd.DataFrame:
    """Per metric: the smallest worsening the night's seeds detect with `power`, one-sided at level
    0.05 / m (what Benjamini-Hochberg asks of a lone regression among the night's m tests), in units
    of the seeds' s.d. and, by the median s.d. of its cells, of the metric; inf where no change can be
    detected (one seed, or an exact test that cannot reach that level)."""
    tested = cmp[cmp.metric.isin(DIRECTIONS) & cmp.seeds_a.notna() & cmp.seeds_b.notna()
                 & ~cmp.note.str.contains("not comparable", regex=False)]  # refused rows test nothing
    level = stats.ALPHA / max(int(tested.p_value.notna().sum()), 1)
    rows = []
    for metric, g in tested.groupby("metric"):
        na, nb = int(g.seeds_a.min()), int(g.seeds_b.min())
        sd = float(np.nanmedian(np.r_[g.std_a, g.std_b])) if g[["std_a", "std_b"]].notna().any().any() else np.nan
        k = stats.detectable_shift(na, nb, level, power)
        rows.append({"metric": metric, "seeds_a": na, "seeds_b": nb, "level": level, "shift_sd": k,
                     "shift": k * sd if np.isfinite(k) else np.inf})
    return pd.DataFrame(rows, columns=["metric", "seeds_a", "seeds_b", "level", "shift_sd", "shift"])


def previous_sweep(storage: Storage, name: str, current: str) -> str | None:
    """The newest sweep of the same config name before `current` (ids sort by their timestamp)."""
    ids = [s for s in storage.ls("sweeps") if s.startswith(f"{name}-") and s < current]
    return max(ids) if ids else None
