"""Night-over-night queries over every sweep in a storage root, in pandas, duckdb and polars.

All nights read as one dataset: sweeps/*/trials/*.parquet and sweeps/*/evaluations/*.parquet.
docs/storage.md shows these exact queries; tests run them. Each returns one value per seed, the seed's result
as gan_tasks/evaluation/seeds.py defines it: a `completed` trial's evaluation at its final step
(trials.steps; evaluations during training are in eval_every/, or, in sweeps written before that
folder existed, in evaluations/ at earlier steps). Diverged, failed, interrupted and early-stopped
(`stopped`) trials are left out. Example question: "modes covered by each
cell of the sweeps named NAME over the last 7 nights". A cell is the trials' `cell` column: loss,
optimizer, their settings and tricks, so two adam entries at different learning rates, or one loss
with and without label smoothing, stay apart. Rows written before that column existed have none:
they fall back to "loss/optimizer" (what a cell at default settings and no tricks is called anyway).
"""
from __future__ import annotations

import pandas as pd

DAYS = 7


def _glob(root: str, what: str) -> str:
    return f"{root.rstrip('/')}/sweeps/*/{what}/*.parquet"


def with_pandas(root: str, name: str, metric: str = "modes_covered") -> pd.DataFrame:
    import glob

    trials = pd.concat((pd.read_parquet(f) for f in glob.glob(_glob(root, "trials"))), ignore_index=True)
    old = trials.loss + "/" + trials.optimizer  # the cell of rows written before the cell column
    trials["cell"] = trials["cell"].fillna(old) if "cell" in trials else old
    evals = pd.concat(pd.read_parquet(f) for f in glob.glob(_glob(root, "evaluations")))
    df = evals[evals.metric == metric].merge(trials[trials.status == "completed"], on=["sweep_id", "trial_id"])
    df = df[(df.step == df.steps) & df.sweep_id.str.startswith(f"{name}-")
            & (df.started_at > pd.Timestamp.now(tz="UTC") - pd.Timedelta(days=DAYS))]
    out = df.groupby(["sweep_id", "cell", "loss", "optimizer"], as_index=False).agg(mean=("value", "mean"),
                                                                                    seeds=("value", "size"))
    return out.sort_values(["sweep_id", "cell"]).reset_index(drop=True)


def with_duckdb(root: str, name: str, metric: str = "modes_covered") -> pd.DataFrame:
    import duckdb

    sql = f"""
        WITH t AS (SELECT NULL::VARCHAR AS cell WHERE false  -- a cell column even if no file has one
                   UNION ALL BY NAME FROM read_parquet('{_glob(root, "trials")}', union_by_name = true))
        SELECT t.sweep_id, coalesce(t.cell, t.loss || '/' || t.optimizer) AS cell, t.loss, t.optimizer,
               avg(e.value) AS mean, count(*) AS seeds
        FROM read_parquet('{_glob(root, "evaluations")}') e JOIN t USING (sweep_id, trial_id)
        WHERE e.metric = ? AND t.status = 'completed' AND e.step = t.steps
          AND t.sweep_id LIKE ? AND t.started_at > now() - INTERVAL {DAYS} DAY
        GROUP BY ALL ORDER BY t.sweep_id, cell"""
    return duckdb.connect().execute(sql, [metric, f"{name}-%"]).df()


def with_polars(root: str, name: str, metric: str = "modes_covered") -> pd.DataFrame:
    from datetime import datetime, timedelta, timezone

    import polars as pl

    from gan_tasks.data.schema import TRIALS

    since = datetime.now(timezone.utc) - timedelta(days=DAYS)
    ev = pl.scan_parquet(_glob(root, "evaluations")).filter(pl.col("metric") == metric)
    tr = (pl.scan_parquet(_glob(root, "trials"), schema=pl.from_arrow(TRIALS.empty_table()).schema,
                          missing_columns="insert")  # older rows have no cell column
          .filter(pl.col("sweep_id").str.starts_with(f"{name}-") & (pl.col("started_at") > since)
                  & (pl.col("status") == "completed"))
          .with_columns(pl.coalesce("cell", pl.concat_str("loss", "optimizer", separator="/"))))
    out = (ev.join(tr, on=["sweep_id", "trial_id"]).filter(pl.col("step") == pl.col("steps"))
           .group_by("sweep_id", "cell", "loss", "optimizer")
           .agg(pl.col("value").mean().alias("mean"), pl.len().alias("seeds"))
           .sort("sweep_id", "cell"))
    return out.collect().to_pandas()
