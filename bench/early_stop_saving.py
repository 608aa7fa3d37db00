"""What early stopping saves, measured: configs/ring8-early-stop.yaml with and without `early_stop`.

Runs both sweeps through the real flow (one local Ray, the temporary Prefect API), then prints and
writes bench/early_stop.md: trial-seconds and generator steps trained by each, the share saved,
and whether the best cell (rank 1 on the early-stop metric and on modes covered) is the same.

    python bench/early_stop_saving.py [--storage DIR] [--out bench/early_stop.md]
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


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--storage", default=str(ROOT / "gansweep-results"))
    ap.add_argument("--out", default=str(ROOT / "bench/early_stop.md"))
    args = ap.parse_args()
    from flows.actors.session import ray_session
    from flows.run.flow import sweep_flow
    from gan_tasks.config import load_config, utc_stamp
    from gan_tasks.data.storage import Storage

    st = Storage.parse(args.storage)
    stamp = utc_stamp()
    cfg = load_config(str(ROOT / "configs/ring8-early-stop.yaml")).model_dump(mode="json")
    es = cfg["early_stop"]
    runs = {}
    with ray_session(log_to_driver=False):
        for label, c in (("without early_stop", {**cfg, "early_stop": None}), ("with early_stop", cfg)):
            sid = f"{cfg['name']}-{'es' if c['early_stop'] else 'full'}-{stamp}"
            t0 = time.perf_counter()
            sweep_flow(c, st.url, sid, return_state=True)
            runs[label] = (sid, time.perf_counter() - t0)
    lines = ["# Early stopping: compute saved and the best cell", "",
             "Regenerate: `python bench/early_stop_saving.py` (configs/ring8-early-stop.yaml: 24 trials = "
             f"4 losses x 2 optimizers x 3 seeds, {cfg['train']['steps']:,} steps; early_stop on "
             f"{es['metric']} at rungs {es['rungs']}, eta {es['reduction_factor']}, min_trials {es['min_trials']}).",
             "", "| run | trials stopped | trial-seconds | generator steps | sweep wall s | best cell (" + es["metric"]
             + ") | best cell (modes_covered) |", "|---|---|---|---|---|---|---|"]
    figures = {}
    for label, (sid, wall) in runs.items():
        trials = st.read_table("sweeps", sid, "trials").to_pandas()
        ranks = st.read_table("sweeps", sid, "rankings").to_pandas()
        best = {m: sorted(f"{r.loss}/{r.optimizer}" for _, r in ranks[(ranks.metric == m) & (ranks["rank"] == 1)].iterrows())
                for m in (es["metric"], "modes_covered")}
        means = {m: ranks[(ranks.metric == m) & (ranks["rank"] == 1)]["mean"].iloc[0] for m in best}
        figures[label] = (trials.wall_seconds.sum(), trials.steps.sum(), best)
        lines.append(f"| {label} | {(trials.status == 'stopped').sum()} of {len(trials)} | "
                     f"{trials.wall_seconds.sum():.0f} | {trials.steps.sum():,} | {wall:.0f} | "
                     + " | ".join(f"{', '.join(best[m])} ({means[m]:.3g})" for m in best) + " |")
    (full_s, full_steps, full_best), (es_s, es_steps, es_best) = figures.values()
    same = {m: "the same" if es_best[m] == full_best[m] else
            ("a subset of the full run's tied rank-1 cells" if set(es_best[m]) < set(full_best[m]) else "different")
            for m in full_best}
    lines += ["", f"Saved: {1 - es_s / full_s:.0%} of trial-seconds, {1 - es_steps / full_steps:.0%} of generator "
              f"steps. Rank-1 cell(s) with early stopping, against the full run: on {es['metric']} {same[es['metric']]}; "
              f"on modes_covered {same['modes_covered']}. With early stopping a cell's statistics are over its "
              "seeds that were not stopped, so its mean leans towards its better seeds (survivorship): read the "
              "ranking, not the means, and confirm a final verdict at the full budget.",
              f"Measured on {os.cpu_count()} CPU cores, {datetime.now(timezone.utc):%Y-%m-%d}.", ""]
    Path(args.out).write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
