"""Early stopping across a real search, measured (issue 26, item 3): configs/search-ring8-early-stop.yaml (3 losses
x 16 Sobol settings, cohort decisions) twice under two sweep ids, then once without its early_stop block.

Writes bench/search_early_stop.md: generator steps and trial-seconds of each run and the share saved, whether the
two early-stopped runs stopped the same trials (they must: cohort decisions are a function of the results), and
per loss whether the setting that is best at the full budget (the run without early stopping) survived the rungs,
and which setting the early-stopped search calls best.

    python bench/search_early_stop.py [--storage DIR] [--out bench/search_early_stop.md] [--after RUN1 [RUN2]]
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
CONFIG = "configs/search-ring8-early-stop.yaml"
LABELS = ("early stop, run 1", "early stop, run 2", "without early_stop")


def _read(st, sid: str, metric) -> dict:
    """A finished search's trials, settings table and each cell's best setting (as the confirm stage picks it)."""
    from gan_tasks.evaluation.budget import best_settings, setting_scores
    from gan_tasks.evaluation.report import load_frames

    frames = load_frames(st, sid)
    settings = st.read_parquet("sweeps", sid, "search", "settings.parquet").to_pandas()
    trials = frames["trials"].drop(columns=["cell", "setting"], errors="ignore").merge(
        settings[["trial_id", "cell", "setting"]], on="trial_id")
    scores = setting_scores(settings, frames["trials"], frames["evaluations"])
    return {"trials": trials, "best": best_settings(scores, metric), "scores": scores}


def _stored_wall(st, sid: str) -> float:
    """Seconds from the sweep's config.yaml written (its start) to report/index.html written (its end)."""
    return (st.fs.modified(st.uri("sweeps", sid, "report", "index.html"))
            - st.fs.modified(st.uri("sweeps", sid, "config.yaml"))).total_seconds()


def _full_rank(scores, cell: str, setting: int, metric) -> str:
    """Where `setting` stands among the cell's settings at the full budget: its rank by the search's metric
    (mean rank over several, as best_settings orders them) and its scores."""
    from gan_tasks.config.scores import mean_ranks

    metrics = (metric,) if isinstance(metric, str) else tuple(metric)
    g = scores[(scores.cell == cell) & scores.metric.isin(metrics)]
    table = g.pivot(index="setting", columns="metric", values="score").reindex(columns=list(metrics))
    order = table.assign(r=mean_ranks({m: table[m] for m in metrics}, metrics)).sort_values("r", kind="stable")
    vals = ", ".join(f"{m} {table.loc[setting, m]:.3g}" for m in metrics)
    best = ", ".join(f"{m} {order.iloc[0][m]:.3g}" for m in metrics)
    return (f"number {list(order.index).index(setting) + 1} of {len(order)} at the full budget ({vals}; "
            f"the best: {best})")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--storage", default=str(ROOT / "gansweep-results"))
    ap.add_argument("--out", default=str(ROOT / "bench/search_early_stop.md"))
    ap.add_argument("--only", type=int, default=3, help="run only the first N of the three sweeps")
    ap.add_argument("--report", nargs="+", metavar="SWEEP_ID", help="write the report of sweeps already run "
                    "(run 1, run 2, without early_stop, in that order; fewer: the rest are left out)")
    ap.add_argument("--after", nargs="+", metavar="SWEEP_ID", default=[], help="sweeps already run (run 1 [, run 2]) "
                    "in --storage: run only the rest of the three")
    args = ap.parse_args()
    from flows.actors.session import ray_session
    from flows.run.flow import sweep_flow
    from gan_tasks.config import load_config, utc_stamp
    from gan_tasks.data.storage import Storage

    st, stamp = Storage.parse(args.storage), utc_stamp()
    cfg = load_config(str(ROOT / CONFIG)).model_dump(mode="json")
    if args.report:
        runs = {label: (sid, None) for label, sid in zip(LABELS, args.report)}
        Path(args.out).write_text(report(st, runs, cfg, [os.getloadavg()[0]]))
        print(Path(args.out).read_text())
        return
    runs, load = {label: (sid, None) for label, sid in zip(LABELS, args.after)}, []
    with ray_session(log_to_driver=False):
        for label, c in list(zip(LABELS, (cfg, cfg, {**cfg, "early_stop": None})))[len(runs):args.only]:
            sid = f"{cfg['name']}-{len(runs) + 1}-{stamp}"
            load.append(os.getloadavg()[0])
            t0 = time.perf_counter()
            sweep_flow(c, st.url, sid, return_state=True)
            runs[label] = (sid, time.perf_counter() - t0)
            load.append(os.getloadavg()[0])
    Path(args.out).write_text(report(st, runs, cfg, load))
    print(Path(args.out).read_text())


def report(st, runs: dict, cfg: dict, load: list[float]) -> str:
    """The markdown; runs: label -> (sweep id, wall seconds or None), some of LABELS (a run not made is left out)."""
    es, search = cfg["early_stop"], cfg["search"]
    metric = tuple(search["metric"]) if isinstance(search["metric"], list) else search["metric"]
    got = {label: _read(st, sid, metric) for label, (sid, _) in runs.items()}
    first, full = got[LABELS[0]], got.get(LABELS[2])
    budget_steps = 3 * search["budget"] * cfg["train"]["steps"]
    lines = ["# Early stopping across a search: steps saved, same decisions, best setting kept", "",
             f"Regenerate: `python bench/search_early_stop.py` ({CONFIG}: 3 losses x {search['budget']} Sobol "
             f"settings x 1 seed, {cfg['train']['steps']:,} steps ({budget_steps:,} generator steps in all); "
             f"early_stop on {' + '.join(es['metric'])} at rungs {es['rungs']}, eta {es['reduction_factor']}, "
             f"decide {es['decide']}; twice, then the same without early_stop).", "",
             "| run | trials stopped | generator steps | sweep wall s | config to report s | best setting per loss |",
             "|---|---|---|---|---|---|"]
    walls = {label: _stored_wall(st, sid) for label, (sid, _) in runs.items()}
    for label, (sid, wall) in runs.items():
        t = got[label]["trials"]
        best = ", ".join(f"{c.split('/')[0]} s{s}" for c, s in sorted(got[label]["best"].items()))
        lines.append(f"| {label} | {(t.status == 'stopped').sum()} of {len(t)} | {t.steps.sum():,} | "
                     f"{'-' if wall is None else f'{wall:.0f}'} | {walls[label]:.0f} | {best} |")
    stopped = [set(g["trials"].query("status == 'stopped'").trial_id) for g in got.values()][:2]
    # A row's wall_seconds is its last segment's (a trial paused at a rung resumes later): walls compare, not those
    later = LABELS[1] if LABELS[1] in runs else LABELS[0]
    lines += ["", f"- **Saved**: {1 - first['trials'].steps.sum() / budget_steps:.0%} of the search's generator steps"
              + (f"; {1 - walls[later] / walls[LABELS[2]]:.0%} of the wall from config written to report written "
                 f"({later}: {walls[later]:.0f} s against {walls[LABELS[2]]:.0f} s without early stopping)."
                 if full is not None else ".")]
    if len(stopped) == 2:
        a, b = stopped
        lines.append(f"- **Same decisions**: the two early-stopped runs stopped {'the same' if a == b else 'different'} "
                     f"{len(a)} trials" + ("" if a == b else f" ({len(a ^ b)} differ)") + ".")
    else:
        lines.append("- **Same decisions**: not measured here (one early-stopped run); "
                     "tests/test_early_stop.py::test_cohort_decisions_are_a_function_of_the_results checks it.")
    if full is None:
        lines.append("- **Best setting survived**: not measured here (needs the run without early stopping).")
    for cell, s in sorted((full or {"best": {}})["best"].items()):
        t = first["trials"]
        row = t[(t.cell == cell) & (t.setting == s)]
        fate = "survived" if (row.status == "completed").all() else f"was stopped at step {int(row.steps.max())}"
        picked = first["best"].get(cell)
        lines.append(f"- **{cell}**: its best setting at the full budget, s{s}, {fate}; the early-stopped search "
                     f"picks s{picked}" + (" (the same)." if picked == s else
                                           f", which is {_full_rank(full['scores'], cell, picked, metric)}."))
    lines += ["", f"Measured on {os.cpu_count()} CPU cores shared with other sessions' runs (load average "
              f"{min(load):.0f}-{max(load):.0f}), {datetime.now(timezone.utc):%Y-%m-%d}.", ""]
    return "\n".join(lines)

if __name__ == "__main__":
    main()
