"""The report of a large sweep (more than SCALE_TRIALS trials), readable at 10,000 trials: a table per cell
instead of a row per trial, sample images of each cell's best, median and worst seed only (at most
MAX_SAMPLES images), the rankings' top TOP_CELLS cells per metric with the rest folded, and every trial in
report/trials.csv beside index.html. A smaller sweep's report is as it was (report.py)."""
from __future__ import annotations

import html

import pandas as pd

from gan_tasks.evaluation.rankings import HIGHER_IS_BETTER
from gan_tasks.evaluation.seeds import seed_counts

SCALE_TRIALS = 256  # above this many trials the report aggregates
MAX_SAMPLES = 96  # sample images in a large sweep's report: best, median and worst seed of at most 32 cells
TOP_CELLS = 10  # rankings rows shown per metric; the rest folded under <details>
CELL = ["loss", "optimizer"]
TRIALS_CSV = "trials.csv"


def at_scale(table: pd.DataFrame) -> bool:
    return len(table) > SCALE_TRIALS


def _primary(table: pd.DataFrame) -> str | None:
    """The metric that orders seeds and cells here: the first ranked one the trials have."""
    return next((m for m in HIGHER_IS_BETTER if m in table and table[m].notna().any()), None)


def sample_rows(table: pd.DataFrame, ranks: pd.DataFrame) -> pd.DataFrame:
    """The trials whose samples a large report shows: per cell its best, median and worst completed seed by
    the primary metric (the first seeds where none has one), of the best MAX_SAMPLES // 3 cells by that
    metric's rankings (the first cells otherwise); each row has a `pick` column (best / median / worst)."""
    metric = _primary(table)
    done = table[table.status == "completed"]
    cells = list(dict.fromkeys(zip(done.loss, done.optimizer)))
    if metric is not None and not ranks.empty:
        r = ranks[ranks.metric == metric].sort_values("rank")
        order = [c for c in zip(r.loss, r.optimizer) if c in set(cells)]
        cells = order + [c for c in cells if c not in set(order)]
    keep, picked = set(cells[:MAX_SAMPLES // 3]), []
    for (loss, opt), g in done.groupby(CELL, sort=False):
        if (loss, opt) not in keep:
            continue
        if metric is not None and g[metric].notna().any():
            g = g[g[metric].notna()].sort_values(metric, ascending=not HIGHER_IS_BETTER[metric], kind="stable")
        idx = dict.fromkeys([0, (len(g) - 1) // 2, len(g) - 1])  # one row when a cell has one seed
        names = {0: "best", (len(g) - 1) // 2: "median", len(g) - 1: "worst"} if metric else {}
        picked += [g.iloc[[i]].assign(pick=names.get(i, "")) for i in idx]
    return pd.concat(picked, ignore_index=True) if picked else table.iloc[:0].assign(pick="")


def cells_table(table: pd.DataFrame) -> pd.DataFrame:
    """Per cell: trials, completed, failed seeds and the note (seeds.seed_counts), mean steps and seconds a
    trial, and each metric's mean and standard deviation over its completed seeds."""
    counts = seed_counts(table, tuple(CELL))
    metrics = [m for m in table.columns if m in HIGHER_IS_BETTER]
    done = table[table.status == "completed"]
    agg = done.groupby(CELL)[["steps", "wall_seconds", *metrics]].agg(["mean", "std"])
    agg.columns = [f"{c}_{s}" for c, s in agg.columns]
    agg = agg.drop(columns=["steps_std", "wall_seconds_std"]).reset_index()
    return counts.merge(agg, on=CELL, how="left")


def cells_html(table: pd.DataFrame, csv_name: str = TRIALS_CSV) -> str:
    counts = table["status"].value_counts().to_dict()
    cells = cells_table(table)
    return (f"<h2>Trials</h2><p>{len(table)} trials in {len(cells)} cells: "
            f"{html.escape(', '.join(f'{k} {v}' for k, v in counts.items()))}. One row per cell here (more than "
            f"{SCALE_TRIALS} trials); every trial, with its status, steps, seconds and final metrics: "
            f"<a href='{csv_name}'>{csv_name}</a>. Click a header to sort.</p>"
            + cells.to_html(index=False, float_format=lambda v: f"{v:.4g}", na_rep="", classes="sortable",
                            border=0))


def fold_rankings(ranks: pd.DataFrame, render) -> str:
    """Per metric, the top TOP_CELLS cells shown and the rest under a <details>; render(frame) -> html."""
    parts = []
    for metric, r in ranks.groupby("metric", sort=False):
        r = r.sort_values("rank", kind="stable")
        parts.append(f"<h3>{html.escape(str(metric))}</h3>" + render(r.head(TOP_CELLS)))
        if len(r) > TOP_CELLS:
            parts.append(f"<details><summary>{len(r) - TOP_CELLS} more cells</summary>"
                         + render(r.iloc[TOP_CELLS:]) + "</details>")
    return "".join(parts)


def trials_csv(table: pd.DataFrame) -> bytes:
    return table.to_csv(index=False).encode()
