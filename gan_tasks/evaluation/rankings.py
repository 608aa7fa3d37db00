"""Rankings over seeds: per (loss, optimizer[, tricks]) cell and metric, how good it is and how sure we are.

Mean, standard deviation (ddof 1), 95 % confidence interval of the mean (Student t, cut to the metric's
bounds: gan_tasks/config/scores.py), median, best seed; the rank of the cell; and whether it is worse than
the best cell: p_value from an exact permutation test (<= 5 seeds on a side, or no spread) or Welch's
t-test, p_adj by Holm over all pairs of the metric's cells, significant when p_adj <= 0.05
(gan_tasks/evaluation/stats.py, docs/statistics.md). Seeds that all agree have no interval: "no spread".
The values are the seeds' results as gan_tasks/evaluation/seeds.py defines them: completed trials'
final evaluations. A cell's diverged, failed or interrupted seeds are counted in `seeds_failed`,
and they and its early-stopped seeds are named in `note`; its statistics are over completed seeds. A
completed seed without a value of a metric (not finite: reverse_kl_hq with no high-quality sample) is named
in the note too: the worst seeds are the ones that lose their value, so the statistics are then optimistic.
Image metrics whose provenance differs (gan_tasks/evaluation/provenance.py) are not compared: a cell
whose seeds differ has no statistics, a metric whose cells differ no tests; the note says why.
"""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pyarrow as pa

from gan_tasks.data import schema
from gan_tasks.config.scores import DIRECTIONS, bounds
from gan_tasks.evaluation import provenance, stats
from gan_tasks.data.storage import Storage
from gan_tasks.config.labels import cell_parts
from gan_tasks.evaluation.seeds import final_rows, seed_counts, seed_results
from gan_tasks.methods.trick_settings import tricks_label

# Which way is better (the directions gan_tasks/evaluation/compare.py uses for regressions); only these
# metrics are ranked. modes_total, *_std are descriptions, not scores.
HIGHER_IS_BETTER = DIRECTIONS  # one table of directions, torch- and pandas-free (validation reads it too)
ALPHA = stats.ALPHA  # level of the test against the best cell, after Holm's correction


def final_values(trials: pd.DataFrame, evaluations: pd.DataFrame) -> pd.DataFrame:
    """One row per (completed trial, ranked metric): the seed's result (seeds.seed_results), with its cell."""
    return seed_results(trials, evaluations, HIGHER_IS_BETTER)


def _cell(values: pd.DataFrame, higher: bool, low: float | None, high: float | None) -> dict:
    v = values.value.to_numpy(dtype=float)
    n = len(v)
    lo, hi = stats.mean_ci(v, low, high)
    best = values.iloc[int(np.argmax(v) if higher else np.argmin(v))] if n else None
    return {"seeds": n, "mean": float(v.mean()) if n else np.nan, "std": float(v.std(ddof=1)) if n > 1 else np.nan,
            "ci95_low": lo, "ci95_high": hi, "median": float(np.median(v)) if n else np.nan,
            "best_seed": int(best.seed) if best is not None else -1,
            "best_value": float(best.value) if best is not None else np.nan}


def _valueless(final: pd.DataFrame) -> dict[tuple[str, str, str], int]:
    """Per (loss, optimizer, metric), completed seeds whose final value is not finite (no value: seeds.py)."""
    rows = final[~np.isfinite(final.value.astype(float))]
    return rows.groupby(["loss", "optimizer", "metric"]).size().to_dict()


def _incomparable(metric: str, values: pd.DataFrame) -> str | None:
    """Why these seeds' values of `metric` cannot be compared (their provenance differs), or None."""
    if "provenance" not in values or values.empty:
        return None
    return provenance.difference(metric, values.provenance.where(values.provenance.notna(), None))


def _upper(evaluations: pd.DataFrame) -> dict[str, float]:
    """Per trial, the metrics that bound another one (modes_total for modes_covered)."""
    if evaluations.empty:
        return {}
    ev = evaluations[evaluations.metric == "modes_total"]
    return ev.groupby("trial_id").value.max().to_dict()


def cell_frame(trials: pd.DataFrame) -> pd.DataFrame:
    """Trials with loss / optimizer relabelled so that cells stay apart, by the one cell-label mechanism
    (gan_tasks/config/labels.py): where two grid entries share a name (adam at two learning rates), the
    entry's label with its settings ("adam(lr 0.0001)"); where trials of one (loss, optimizer) differ only
    by their tricks (grid.tricks), the tricks that are on after the loss ("non-saturating + label_smoothing=0.1").
    Elsewhere the plain names. Idempotent: it reads only config_json."""
    if "config_json" not in trials or trials.empty:
        return trials
    cfgs = trials.config_json.map(json.loads)
    parts = {}

    def part(i: int, key: str) -> str:
        if i not in parts:
            parts[i] = cell_parts(cfgs.iloc[i])
        return parts[i][key]

    out = {}
    for column in ("loss", "optimizer"):  # ambiguous: one name, two resolved entries
        key = cfgs.map(lambda c: json.dumps(c[column], sort_keys=True))
        ambiguous = (key.groupby(trials[column]).transform("nunique") > 1).to_numpy()
        out[column] = [part(i, column) if amb else name for i, (amb, name) in enumerate(zip(ambiguous, trials[column]))]
    trials = trials.assign(**out)
    tricks = cfgs.map(lambda c: tricks_label(c.get("tricks") or {}))
    differ = tricks.groupby([trials.loss, trials.optimizer]).transform("nunique") > 1
    with_tricks = trials.loss + tricks.map(lambda t: f" + {t}" if t else "")
    return trials.assign(loss=trials.loss.where(~differ, with_tricks))


def rank_cells(trials: pd.DataFrame, evaluations: pd.DataFrame, sweep_id: str, published=None,
               steps: int | None = None) -> pd.DataFrame:
    """The rankings table (schema.RANKINGS) from a sweep's trials and evaluations frames; with a
    config's `published:` block (and its train.steps), the paper's figures beside the cells they match."""
    if trials.empty:
        return schema.RANKINGS.empty_table().to_pandas()
    trials = cell_frame(trials)
    final = final_rows(trials, evaluations, HIGHER_IS_BETTER)  # completed seeds only; others are in `counts`
    vals, valueless = final[np.isfinite(final.value.astype(float))], _valueless(final)
    counts = seed_counts(trials).set_index(["loss", "optimizer"])
    cells = trials[["loss", "optimizer"]].drop_duplicates()
    totals = _upper(evaluations)
    rows, mixed = [], {}
    for metric in sorted(set(vals.metric)):
        higher = HIGHER_IS_BETTER[metric]
        m = vals[vals.metric == metric]
        mixed[metric] = _incomparable(metric, m)
        by_cell = dict(list(m.groupby(["loss", "optimizer"], sort=False)))  # a search has hundreds of cells
        for loss, opt in cells.itertuples(index=False):
            c = by_cell.get((loss, opt), m.iloc[:0])
            n = counts.loc[(loss, opt)]
            notes = [n.note] if n.note else []
            if k := valueless.get((loss, opt, metric), 0):
                notes.append(f"no value for {k} of {int(n.completed)} completed seeds")
            refused = _incomparable(metric, c)
            if refused:  # the cell's seeds were measured differently: no statistic over them
                notes.append(refused)
                c = c.iloc[:0]
            if len(c) > 1 and stats.no_spread(c.value.to_numpy(dtype=float)):
                notes.append(f"no spread: all {len(c)} seeds {c.value.iloc[0]:.4g}")
            cap = max((totals[t] for t in c.trial_id if t in totals), default=None)
            rows.append({"sweep_id": sweep_id, "loss": loss, "optimizer": opt, "metric": metric,
                         "seeds_failed": int(n.seeds_failed), "higher_is_better": higher,
                         "note": ", ".join(notes), **_cell(c, higher, *bounds(metric, {"modes_total": cap})),
                         "values_": c.value.to_numpy(dtype=float)})
    if not rows:
        return schema.RANKINGS.empty_table().to_pandas()
    df = pd.DataFrame(rows)
    out = []
    for metric, g in df.groupby("metric", sort=True):
        g = g.copy()
        sign = -1 if g.higher_is_better.iloc[0] else 1
        g["rank"] = (sign * g["mean"]).rank(method="min", na_option="bottom").astype(int)
        g["p_value"], g["p_adj"] = stats.versus_best(list(g.values_), int(np.argmin(g["rank"].to_numpy())))
        if mixed[metric]:  # cells measured differently are not tested against each other
            g["p_value"], g["p_adj"] = np.nan, np.nan
            g["note"] = [n if mixed[metric] in n else ", ".join(filter(None, (n, mixed[metric]))) for n in g.note]
        g["significant"] = g.p_adj <= ALPHA
        out.append(g)
    df = pd.concat(out).drop(columns="values_").sort_values(["metric", "rank", "loss", "optimizer"])
    df = _with_published(df, trials, vals, published, steps)
    return df[schema.RANKINGS.names].reset_index(drop=True)


_PUBLISHED = ["published_row", "published_mean", "published_se", "published_runs", "published_margin", "budget_ratio",
              "verdict_absolute", "verdict_ordering"]


def _with_published(df: pd.DataFrame, trials: pd.DataFrame, vals: pd.DataFrame, published, steps) -> pd.DataFrame:
    """The published columns (schema.RANKINGS), merged on (loss, optimizer, metric); null without a match."""
    if published is None:
        return df.assign(**{c: None for c in _PUBLISHED})
    from gan_tasks.evaluation.published import compare

    cmp = compare(published, trials, vals, steps)
    cmp = cmp[cmp.loss.notna()][["loss", "optimizer", "metric", *_PUBLISHED]]
    return df.merge(cmp.drop_duplicates(["loss", "optimizer", "metric"]), on=["loss", "optimizer", "metric"],
                    how="left")


def write_rankings(storage: Storage, sweep_id: str, table: pd.DataFrame) -> None:
    storage.write_parquet(pa.Table.from_pandas(table, schema=schema.RANKINGS, preserve_index=False),
                          "sweeps", sweep_id, "rankings", "rankings.parquet")
