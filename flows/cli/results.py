"""`gansweep report`, `published` and `compare`: what a stored sweep says, from storage alone; and the
closing table of `run`."""
from __future__ import annotations

import os
from typing import Optional

import typer

from flows.cli.common import DEFAULT_STORAGE, EndpointOpt, StorageOpt, aligned, console, say, storage_at


def report(sweep_id: str, storage: StorageOpt = DEFAULT_STORAGE, s3_endpoint_url: EndpointOpt = None) -> None:
    """Regenerate a sweep's report/index.html from storage alone."""
    from gan_tasks.evaluation.report import write_report

    st = storage_at(storage, s3_endpoint_url, sweep_id)
    console.print(write_report(st, sweep_id), soft_wrap=True)


def published(sweep_id: str, storage: StorageOpt = DEFAULT_STORAGE,
              out: Optional[str] = typer.Option(None, help="also write the markdown to this file"),
              s3_endpoint_url: EndpointOpt = None) -> None:
    """The sweep config's published table beside the measured values, with an absolute and an ordering verdict
    per figure (markdown)."""
    from gan_tasks.evaluation.report import sweep_comparison

    st = storage_at(storage, s3_endpoint_url, sweep_id)
    _, _, md = sweep_comparison(st, sweep_id)
    print(md)
    if out:
        with open(out, "w") as f:
            f.write(md)
        print(f"written to {os.path.abspath(out)}")


def compare(sweep_a: str, sweep_b: str, storage: StorageOpt = DEFAULT_STORAGE,
            s3_endpoint_url: EndpointOpt = None) -> None:
    """Per (loss, optimizer, metric): the change from SWEEP_A to SWEEP_B, one-sided test in the metric's worse
    direction with Benjamini-Hochberg over all rows; missing cells and more failed seeds are regressions."""
    from gan_tasks.evaluation.compare import code_changes, compare as compare_sweeps, detectable, regressions

    st = storage_at(storage, s3_endpoint_url, sweep_a, sweep_b)
    cmp = compare_sweeps(st, sweep_a, sweep_b)
    code = code_changes(st, sweep_a, sweep_b)
    changed = {(r.loss, r.optimizer) for r in code.itertuples() if r.changed}

    def num(v: float, fmt: str) -> str:
        return "-" if v != v else format(v, fmt)

    aligned(("loss", "optimizer", "metric", "A", "B", "delta", "p", "p_adj", ""),
            [(r.loss, r.optimizer, r.metric, num(r.mean_a, ".4g"), num(r.mean_b, ".4g"), num(r.delta, "+.4g"),
              num(r.p_value, ".2g"), num(r.p_adj, ".2g"), ("REGRESSION " if r.flagged else "") + r.note
              + (" CODE CHANGED" if (r.loss, r.optimizer) in changed else ""))
             for r in cmp.itertuples()])
    if len(code):
        say("plugin code per cell (distribution version code hash):")
        aligned(("loss", "optimizer", f"A {sweep_a}", f"B {sweep_b}", ""),
                [(r.loss, r.optimizer, _code(r.code_a), _code(r.code_b), "CODE CHANGED" if r.changed else "")
                 for r in code.itertuples()])
    det = detectable(cmp)
    if len(det):
        say(f"smallest worsening the seeds detect (80 % power, one-sided at level {det.level.iloc[0]:.2g} = "
            "0.05 / tests):")
        aligned(("metric", "seeds A", "seeds B", "s.d.", "metric units"),
                [(r.metric, str(r.seeds_a), str(r.seeds_b), "not detectable" if r.shift_sd == float("inf") else
                  f"{r.shift_sd:.2g}", "-" if r.shift == float("inf") or r.shift != r.shift else f"{r.shift:.3g}")
                 for r in det.itertuples()])
    for r in cmp[cmp.note.str.contains("not comparable", regex=False)].itertuples():
        say(f"refused: {r.loss} / {r.optimizer}: {r.note}")
    say(f"{len(regressions(cmp))} regression(s) (Benjamini-Hochberg over the night's tests; a cell "
        "missing tonight or with more failed seeds counts)")


def _code(code: object) -> str:
    return (code or "built-in") if isinstance(code, str) else "-"


def best_cells(st, sid: str, top: int = 5) -> None:
    """The closing table: per ranked metric, the best cells with their mean, 95 % CI over seeds (cut to the
    metric's bounds) and the test against the best cell (p_adj: Holm). Plain aligned lines: nothing is cut."""
    t = st.read_table("sweeps", sid, "rankings")
    if t is None or t.num_rows == 0:
        return
    ranks = t.to_pandas()
    rows = []
    for metric, g in ranks.groupby("metric", sort=False):
        for r in g.sort_values("rank").head(top).itertuples():
            ci = f"[{r.ci95_low:.3g}, {r.ci95_high:.3g}]" if r.ci95_low == r.ci95_low else (
                "no spread" if "no spread" in r.note else "")
            vs = (f"p_adj={r.p_adj:.2g}" + (" *" if r.significant else "")) if r.p_adj == r.p_adj else (
                "best" if r.rank == 1 else "")
            seeds = f"{r.seeds}" + (f" ({r.seeds_failed} failed)" if r.seeds_failed else "")
            rows.append((metric, str(r.rank), f"{r.loss}/{r.optimizer}", f"{r.mean:.3g}", ci, seeds, vs))
    console.print("\n[bold]best cells[/bold] (mean over seeds; * = worse than the best at p_adj <= 0.05: exact "
                  "permutation test or Welch's, Holm over all pairs of cells)",
                  soft_wrap=True)
    aligned(("metric", "rank", "cell", "mean", "95 % CI", "seeds", "vs best"), rows)
    if st.exists("sweeps", sid, "search", "confirm.md"):  # a search: the table that answers the question
        console.print("\n[bold]confirm stage[/bold] (each cell's best setting on new seeds, ranked as above; "
                      "budget curves in the report)", soft_wrap=True)
        say(st.read_bytes("sweeps", sid, "search", "confirm.md").decode().rstrip())


def register(app: typer.Typer) -> None:
    app.command()(report)
    app.command("published")(published)
    app.command("compare")(compare)
