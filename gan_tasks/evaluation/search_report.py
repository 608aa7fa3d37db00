"""A search's results (docs/search.md), from storage alone: best-at-budget curves and pairwise probabilities
(budget_curves/), the confirm stage's rankings (search/confirm_rankings.parquet), a plot and a markdown table, and
the report's section over them."""
from __future__ import annotations

import base64
import html
import io
import json

import pandas as pd
import pyarrow as pa

from gan_tasks.evaluation.budget import curve_table, pair_table, setting_scores
from gan_tasks.evaluation.rankings import rank_cells
from gan_tasks.data.storage import Storage

SETTINGS = ("search", "settings.parquet")
CURVES, PAIRS, PLOT = ("budget_curves", "curves.parquet"), ("budget_curves", "pairs.parquet"), ("budget_curves",
                                                                                                  "curves.png")
CONFIRM, CONFIRM_MD = ("search", "confirm_rankings.parquet"), ("search", "confirm.md")


def _by_cell(trials: pd.DataFrame, settings: pd.DataFrame) -> pd.DataFrame:
    """Confirm trials labelled by their search cell (loss; optimizer[/tricks]), not by each setting's values."""
    cell = settings.set_index("trial_id").cell
    labels = trials.trial_id.map(cell)
    return trials.drop(columns=["config_json", "cell"], errors="ignore").assign(
        loss=labels.str.split("/", n=1).str[0], optimizer=labels.str.split("/", n=1).str[1])


def write_search_tables(storage: Storage, sweep_id: str, frames: dict[str, pd.DataFrame]) -> bool:
    """Curves, pairs, the confirm rankings, the plot and confirm.md, where the sweep has a search; whether it has."""
    if not storage.exists("sweeps", sweep_id, *SETTINGS) or frames["trials"].empty:
        return False
    settings = storage.read_parquet("sweeps", sweep_id, *SETTINGS).to_pandas()
    trials, ev = frames["trials"], frames["evaluations"]
    scores = setting_scores(settings[settings.stage == "search"], trials, ev)
    curves, pairs = curve_table(scores, sweep_id), pair_table(scores, sweep_id)
    storage.write_parquet(pa.Table.from_pandas(curves, preserve_index=False), "sweeps", sweep_id, *CURVES)
    storage.write_parquet(pa.Table.from_pandas(pairs, preserve_index=False), "sweeps", sweep_id, *PAIRS)
    if not curves.empty:
        storage.write_bytes(_plot(curves, _budget(settings, trials)), "sweeps", sweep_id, *PLOT)
    confirm = settings[settings.stage == "confirm"]
    if not confirm.empty:
        ct = _by_cell(trials[trials.trial_id.isin(confirm.trial_id)], confirm)
        ranks = rank_cells(ct, ev, sweep_id)
        storage.write_parquet(pa.Table.from_pandas(ranks, preserve_index=False), "sweeps", sweep_id, *CONFIRM)
        storage.write_bytes(confirm_markdown(ranks, confirm).encode(), "sweeps", sweep_id, *CONFIRM_MD)
    return True


def confirm_markdown(ranks: pd.DataFrame, confirm: pd.DataFrame) -> str:
    """The confirm stage's rankings as markdown: per metric, each cell's best setting over its new seeds."""
    if ranks.empty:
        return "No confirm-stage results.\n"
    setting = confirm.drop_duplicates("cell").set_index("cell").setting
    r = ranks.assign(setting=[f"s{setting.get(f'{lo}/{op}', '?')}" for lo, op in zip(ranks.loss, ranks.optimizer)],
                     ci95=[f"[{lo:.3g}, {hi:.3g}]" if pd.notna(lo) else "" for lo, hi in zip(ranks.ci95_low,
                                                                                          ranks.ci95_high)],
                     vs_best=[("worse" if s else "n.s.") if pd.notna(p) else ("best" if k == 1 else "n/a")
                              for s, p, k in zip(ranks.significant, ranks.p_adj, ranks["rank"])])
    cols = ["metric", "rank", "loss", "optimizer", "setting", "seeds", "mean", "ci95", "p_adj", "vs_best", "note"]
    return r[cols].to_markdown(index=False, floatfmt=".4g") + "\n"


def _budget(settings: pd.DataFrame, trials: pd.DataFrame) -> str:
    """What the curves were measured with, for the plot's title: settings per cell, seeds each, steps."""
    search = settings[settings.stage == "search"]
    steps = trials[trials.trial_id.isin(search.trial_id)].steps.max()
    per_cell = search.groupby("cell").setting.nunique().max()
    seeds = search.groupby(["cell", "setting"]).seed.nunique().max()
    return f"{per_cell} settings sampled per cell, {seeds} seed(s) each, up to {steps:,} steps a trial"


def _plot(curves: pd.DataFrame, budget: str = "") -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    metrics = sorted(set(curves.metric))
    fig, axes = plt.subplots(1, len(metrics), figsize=(3.8 * len(metrics), 3.0), squeeze=False)
    for ax, metric in zip(axes[0], metrics):
        for cell, g in curves[curves.metric == metric].groupby("cell", sort=True):
            line, = ax.plot(g.k, g.expected_best, marker=".", label=cell)
            ax.fill_between(g.k, g.ci95_low, g.ci95_high, color=line.get_color(), alpha=0.15)
        better = "higher" if curves[curves.metric == metric].higher_is_better.iloc[0] else "lower"
        ax.set(title=f"{metric} ({better} is better)", xlabel="budget k (settings)", ylabel="expected best")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes[0][0].legend(fontsize=7)
    if budget:
        fig.suptitle(f"best-at-budget curves (95 % bootstrap band): {budget}", fontsize=9)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    plt.close(fig)
    return buf.getvalue()


def _survivors_html(storage: Storage, sweep_id: str) -> str:
    """Per cell: how many of its search trials completed (scored), were stopped by early_stop, or failed."""
    settings = storage.read_parquet("sweeps", sweep_id, *SETTINGS).to_pandas()
    trials = storage.read_table("sweeps", sweep_id, "trials")
    if trials is None:
        return ""
    t = trials.to_pandas().set_index("trial_id")
    s = settings[settings.stage == "search"].assign(status=lambda d: d.trial_id.map(t.status).fillna("not run"),
                                                    steps=lambda d: d.trial_id.map(t.steps).fillna(0))
    table = pd.crosstab(s.cell, s.status)
    full = int(json.loads(t.config_json.iloc[0])["train"]["steps"])
    table["steps trained"] = [f"{g.steps.sum() / (full * len(g)):.0%}" for _, g in s.groupby("cell", sort=True)]
    return ("<p>Search trials per cell by status (a stopped or failed trial is no seed of its setting), and the "
            "generator steps they trained as a share of every trial's full budget (what early stopping saved):</p>"
            + table.to_html(border=0))


def search_html(storage: Storage, sweep_id: str) -> str:
    """The report's search section; '' for a sweep without a search."""
    if not storage.exists("sweeps", sweep_id, *CURVES):
        return ""
    parts = ["<h2>Search: best score at a tuning budget</h2><p>Per cell and metric, the expected best score among k "
             "settings drawn without replacement from the sampled ones (exact, by order statistics), with a 95 % "
             "bootstrap band over settings; a setting's score is the mean over its completed seeds' final "
             "evaluations (docs/search.md).</p>"]
    if storage.exists("sweeps", sweep_id, *PLOT):
        png = base64.b64encode(storage.read_bytes("sweeps", sweep_id, *PLOT)).decode()
        parts.append(f"<img alt='budget curves' src='data:image/png;base64,{png}'>")
    parts.append(_survivors_html(storage, sweep_id))
    pairs = storage.read_parquet("sweeps", sweep_id, *PAIRS).to_pandas()
    if not pairs.empty:
        last = pairs[pairs.k == pairs.groupby(["metric", "cell_a", "cell_b"]).k.transform("max")]
        parts.append("<h3>P(row's best of k beats column's), at the largest k both cells reach</h3>")
        for metric, g in last.groupby("metric"):
            t = g.pivot(index="cell_a", columns="cell_b", values="p_a_beats_b")
            parts.append(f"<p>{html.escape(metric)} (k = {int(g.k.max())})</p>"
                         + t.to_html(float_format=lambda v: f"{v:.2f}", na_rep="", border=0))
    if storage.exists("sweeps", sweep_id, *CONFIRM_MD):
        ranks = storage.read_parquet("sweeps", sweep_id, *CONFIRM).to_pandas()
        parts.append("<h3>Confirm stage: each cell's best setting on new seeds, ranked</h3><p>Exact permutation or "
                     "Welch tests against the best cell, Holm over all pairs (docs/statistics.md).</p>"
                     + ranks.drop(columns=[c for c in ranks if c.startswith(("published", "verdict", "budget_"))])
                     .to_html(index=False, float_format=lambda v: f"{v:.4g}", na_rep="", border=0))
    return "".join(parts)
