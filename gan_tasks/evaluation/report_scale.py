"""The report of a large sweep (more than SCALE_TRIALS trials), readable at 10,000 trials: a table per cell
instead of a row per trial, sample images of each cell's best, median and worst seed only (at most
MAX_SAMPLES images), the rankings' top TOP_CELLS cells per metric with the rest folded, and every trial in
report/trials.csv beside index.html. A smaller sweep's report is as it was (report.py). Training curves, at any
size, are drawn for at most CURVE_CELLS cells x CURVE_SEEDS seeds (curve_trials), the note saying which."""
from __future__ import annotations

import html

import pandas as pd

from gan_tasks.evaluation.rankings import HIGHER_IS_BETTER
from gan_tasks.evaluation.seeds import seed_counts

SCALE_TRIALS = 256  # above this many trials the report aggregates
MAX_SAMPLES = 96  # sample images in a large sweep's report: best, median and worst seed of at most 32 cells
TOP_CELLS = 10  # rankings rows shown per metric; the rest folded under <details>
CURVE_CELLS, CURVE_SEEDS = 10, 32  # training curves: of at most this many cells, and seeds of each
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
    keep, picked = set(_best_cells(done, ranks, metric)[:MAX_SAMPLES // 3]), []
    for (loss, opt), g in done.groupby(CELL, sort=False):
        if (loss, opt) not in keep:
            continue
        if metric is not None and g[metric].notna().any():
            g = g[g[metric].notna()].sort_values(metric, ascending=not HIGHER_IS_BETTER[metric], kind="stable")
        idx = dict.fromkeys([0, (len(g) - 1) // 2, len(g) - 1])  # one row when a cell has one seed
        names = {0: "best", (len(g) - 1) // 2: "median", len(g) - 1: "worst"} if metric else {}
        picked += [g.iloc[[i]].assign(pick=names.get(i, "")) for i in idx]
    return pd.concat(picked, ignore_index=True) if picked else table.iloc[:0].assign(pick="")


def _best_cells(table: pd.DataFrame, ranks: pd.DataFrame, metric: str | None) -> list[tuple[str, str]]:
    """The cells of `table`, best first by `metric`'s rankings (unranked ones after, in table order)."""
    cells = list(dict.fromkeys(zip(table.loss, table.optimizer)))
    if metric is None or ranks.empty:
        return cells
    r = ranks[ranks.metric == metric].sort_values("rank")
    order = [c for c in zip(r.loss, r.optimizer) if c in set(cells)]
    return order + [c for c in cells if c not in set(order)]


def curve_trials(table: pd.DataFrame, ranks: pd.DataFrame) -> tuple[set[str], str]:
    """The trials whose training curves a report draws, and a note saying which where not all: the best
    CURVE_CELLS cells by the primary metric's rankings, each with its CURVE_SEEDS lowest seed numbers (not
    seeds chosen by their outcome). Only their metrics files are read: at 10,000 trials, 64 of 10,000."""
    metric = _primary(table)
    cells = _best_cells(table, ranks, metric)
    keep = set(cells[:CURVE_CELLS])
    mine = table[[c in keep for c in zip(table.loss, table.optimizer)]]
    mine = mine.sort_values("seed", kind="stable").groupby(CELL, sort=False).head(CURVE_SEEDS)
    notes = ([f"the best {CURVE_CELLS} of {len(cells)} cells by {metric or 'their order'}"]
             if len(cells) > CURVE_CELLS else [])
    notes += ([f"each cell's {CURVE_SEEDS} lowest seed numbers"]
              if table.groupby(CELL).size().max() > CURVE_SEEDS else [])
    return set(mine.trial_id), ("Drawn: " + "; ".join(notes) + "." if notes else "")


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
