"""A seed's result, defined once: what every table that reports a figure over seeds stands on.

A seed's result is a *completed* trial's final evaluation: its evaluations/<trial>.parquet, measured
at its last step (evaluation.n_samples). Nothing else is one:
- a diverged, failed or interrupted trial (FAILED) never contributes a value, not even one on file
  (an eval_every value from before it failed, or a final evaluation); it counts in `seeds_failed`;
- a trial early_stop cut short (`stopped`, at a rung: an earlier step) is left out of the statistics
  too; it is named in its cell's note ("stopped 1 of 3 seeds (early_stop)"), not counted as failed;
- an evaluation during training (evaluation.eval_every; storage's `final` column False) is never one;
- a non-finite value (reverse_kl_hq without a high-quality sample) is no value; rankings name such seeds in
  the cell's note ("no value for 1 of 3 completed seeds"), as a value missing for a reason, not at random.
A trial still `running` (a report during a sweep) is named in the note, neither result nor failure.
Rankings, published vs measured, compare, the report's tables, the defaults table and queries.py
(and docs/storage.md's recipes: status 'completed', the evaluation at the trial's final step) use it.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pandas loads where a table is computed: published.py's importers need only the names
    import pandas as pd

COMPLETED, STOPPED = "completed", "stopped"
FAILED = ("diverged", "failed", "interrupted")
COLUMNS = ["trial_id", "metric", "step", "value", "loss", "optimizer", "seed"]


def seed_results(trials: pd.DataFrame, evaluations: pd.DataFrame, metrics=None) -> pd.DataFrame:
    """One row per (completed trial, metric): its final evaluation's value, with the trial's cell columns
    (loss, optimizer, seed; cell where trials have it). `evaluations` as load_frames reads them, with
    a `final` column; a frame without one is taken to hold final evaluations. Of several final rows of
    one metric, the last step's. `metrics`: only these (e.g. the ranked ones)."""
    import numpy as np

    final = final_rows(trials, evaluations, metrics)
    return final[np.isfinite(final.value.astype(float))]


def final_rows(trials: pd.DataFrame, evaluations: pd.DataFrame, metrics=None) -> pd.DataFrame:
    """seed_results with the non-finite values kept (a completed seed that has no value of a metric)."""
    import pandas as pd

    if trials.empty or evaluations.empty:
        return pd.DataFrame(columns=COLUMNS)
    ev = evaluations[evaluations.final.eq(True)] if "final" in evaluations else evaluations
    done = trials[trials.status == COMPLETED]
    ev = ev[ev.trial_id.isin(done.trial_id) & (ev.metric.isin(metrics) if metrics is not None else True)]
    ev = ev.sort_values("step", kind="stable").groupby(["trial_id", "metric"]).tail(1)
    cell = ["trial_id", "loss", "optimizer", "seed"] + (["cell"] if "cell" in trials else [])
    return ev.drop(columns=[c for c in cell[1:] if c in ev]).merge(done[cell], on="trial_id")


def seed_counts(trials: pd.DataFrame, by: tuple[str, ...] = ("loss", "optimizer")) -> pd.DataFrame:
    """Per cell (`by`): trials, completed, seeds_failed (FAILED), stopped, and a note naming every seed
    that is not a result, e.g. "diverged 1 of 3 seeds, stopped 1 of 3 seeds (early_stop)"."""
    import pandas as pd

    rows = []
    for key, t in trials.groupby(list(by), sort=False):
        counts = t.status[t.status != COMPLETED].value_counts()
        note = ", ".join(f"{s} {k} of {len(t)} seeds" + (" (early_stop)" if s == STOPPED else "")
                         for s, k in counts.items())
        rows.append({**dict(zip(by, key)), "trials": len(t), "completed": int((t.status == COMPLETED).sum()),
                     "seeds_failed": int(t.status.isin(FAILED).sum()), "stopped": int((t.status == STOPPED).sum()),
                     "note": note})
    return pd.DataFrame(rows, columns=[*by, "trials", "completed", "seeds_failed", "stopped", "note"])
