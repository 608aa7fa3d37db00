"""Night-over-night queries over every sweep in a storage root, in pandas, duckdb and polars.

All nights read as one dataset: sweeps/*/trials/*.parquet and sweeps/*/evaluations/*.parquet.
README shows these exact queries; tests run them. Example question: "modes covered by each
loss/optimizer cell of the sweeps named NAME over the last 7 nights".
"""
from __future__ import annotations

import pandas as pd

DAYS = 7


def _glob(root: str, what: str) -> str:
    return f"{root.rstrip('/')}/sweeps/*/{what}/*.parquet"


def with_pandas(root: str, name: str, metric: str = "modes_covered") -> pd.DataFrame:
    import glob

    trials = pd.concat(pd.read_parquet(f) for f in glob.glob(_glob(root, "trials")))
    evals = pd.concat(pd.read_parquet(f) for f in glob.glob(_glob(root, "evaluations")))
    df = evals[evals.metric == metric].merge(trials, on=["sweep_id", "trial_id"])
    df = df[df.sweep_id.str.startswith(f"{name}-")
            & (df.started_at > pd.Timestamp.now(tz="UTC") - pd.Timedelta(days=DAYS))]
    out = df.groupby(["sweep_id", "loss", "optimizer"], as_index=False).agg(mean=("value", "mean"),
                                                                            seeds=("value", "size"))
    return out.sort_values(["sweep_id", "loss", "optimizer"]).reset_index(drop=True)


def with_duckdb(root: str, name: str, metric: str = "modes_covered") -> pd.DataFrame:
    import duckdb

    sql = f"""
        SELECT t.sweep_id, t.loss, t.optimizer, avg(e.value) AS mean, count(*) AS seeds
        FROM read_parquet('{_glob(root, "evaluations")}') e
        JOIN read_parquet('{_glob(root, "trials")}') t USING (sweep_id, trial_id)
        WHERE e.metric = ? AND t.sweep_id LIKE ? AND t.started_at > now() - INTERVAL {DAYS} DAY
        GROUP BY ALL ORDER BY t.sweep_id, t.loss, t.optimizer"""
    return duckdb.connect().execute(sql, [metric, f"{name}-%"]).df()


def with_polars(root: str, name: str, metric: str = "modes_covered") -> pd.DataFrame:
    from datetime import datetime, timedelta, timezone

    import polars as pl

    since = datetime.now(timezone.utc) - timedelta(days=DAYS)
    ev = pl.scan_parquet(_glob(root, "evaluations")).filter(pl.col("metric") == metric)
    tr = pl.scan_parquet(_glob(root, "trials")).filter(pl.col("sweep_id").str.starts_with(f"{name}-")
                                                       & (pl.col("started_at") > since))
    out = (ev.join(tr, on=["sweep_id", "trial_id"])
           .group_by("sweep_id", "loss", "optimizer")
           .agg(pl.col("value").mean().alias("mean"), pl.len().alias("seeds"))
           .sort("sweep_id", "loss", "optimizer"))
    return out.collect().to_pandas()
