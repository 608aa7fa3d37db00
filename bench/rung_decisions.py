"""Early-stop rung decisions at scale (issue 28, item 2): seconds for one asynchronous decision when the n-th
trial reaches a rung, with n synthetic trials' evaluation files (at the rung and at one other step) and their
rung marks in a local storage folder. Before: the scan `rung_values` made until the marks (list eval_every/,
read every trial's file at the step: n reads a decision, ~n^2/2 a sweep). Now: `rung_scores`, one listing of
the rung's marks (gan_tasks/config/early_stop.py: record_rung).

- `rung_decision_s_before_<n>`, `rung_decision_s_after_<n>`: median seconds of one decision at n trials.
- `rung_decision_ratio_<n>`: before / after.
- `rung_sweep_s_before_<n>`, `rung_sweep_s_after_<n>`: what the n arrivals' decisions of a sweep cost in all,
  estimated as n/2 x the decision at n (both grow linearly in n per decision: the reads, the listing's names).

    python -m bench.rung_decisions [--trials 250 500 1000] [--decisions 5] [--storage DIR]
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time

from bench.harness import Figure
from gan_tasks.config.early_stop import EarlyStop, go_on, record_rung, rung_scores
from gan_tasks.data.storage import Storage
from gan_tasks.evaluation.evaluate import write_evaluations

RUNG, OTHER, SID = 100, 50, "rungs"
METRICS = {"reverse_kl": 0.5, "modes_covered": 8.0, "high_quality": 0.9}


def scan_values(storage: Storage, sweep_id: str, step: int, metric: str) -> dict[str, float]:
    """rung_values as it was before the marks: every trial's file at the step, read."""
    out = {}
    for folder in (("sweeps", sweep_id, "evaluations"), ("sweeps", sweep_id, "eval_every")):
        for name in storage.ls(*folder):
            if name.endswith(f"-{step:09d}.parquet"):
                rows = storage.read_parquet(*folder, name).to_pylist()
                out.update({r["trial_id"]: float(r["value"]) for r in rows if r["metric"] == metric})
    return out


def _trial(storage: Storage, i: int) -> None:
    """Trial i's evaluation files at OTHER and RUNG and its marks at RUNG, as a trial's on_eval writes them."""
    tid = f"{i:012x}"
    for step in (OTHER, RUNG):
        values = {m: v * (1 + (i * 7919 % 1000) / 1000) for m, v in METRICS.items()}
        row = {"sweep_id": SID, "trial_id": tid, "step": step, "extractor": "", "extractor_hash": "",
               "provenance": "", "provenance_key": ""}
        write_evaluations(storage, SID, tid, [{**row, "metric": m, "value": v} for m, v in values.items()], step)
    record_rung(storage, SID, RUNG, tid, {"reverse_kl": values["reverse_kl"]})


def _median_s(fn, k: int) -> float:
    times = []
    for _ in range(k):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def bench_rungs(storage: Storage, sizes: list[int], k: int) -> list[Figure]:
    es = EarlyStop(metric="reverse_kl", rungs=(RUNG,), reduction_factor=3, min_trials=3)
    out, written = [], 0
    for n in sorted(sizes):
        for i in range(written, n):
            _trial(storage, i)
        written = n
        tid = f"{n - 1:012x}"  # the n-th arrival decides
        before = scan_values(storage, SID, RUNG, es.metric)
        after = rung_scores(storage, SID, RUNG, es)
        assert before == after and go_on(before, tid, es) == go_on(after, tid, es), "the same decision"
        b = _median_s(lambda: go_on(scan_values(storage, SID, RUNG, es.metric), tid, es), k)
        a = _median_s(lambda: go_on(rung_scores(storage, SID, RUNG, es), tid, es), k)
        out += [Figure(f"rung_decision_s_before_{n}", b, f"one rung decision at {n} trials, before (s)"),
                Figure(f"rung_decision_s_after_{n}", a, f"one rung decision at {n} trials, now (s)"),
                Figure(f"rung_decision_ratio_{n}", b / a, f"rung decision before / now at {n} trials"),
                Figure(f"rung_sweep_s_before_{n}", b * n / 2, f"{n} arrivals' decisions, before (s, estimate)"),
                Figure(f"rung_sweep_s_after_{n}", a * n / 2, f"{n} arrivals' decisions, now (s, estimate)")]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(prog="python -m bench.rung_decisions", description=__doc__.split("\n\n")[0])
    ap.add_argument("--trials", type=int, nargs="+", default=[250, 500, 1000])
    ap.add_argument("--decisions", type=int, default=5, help="decisions timed per size and side (median)")
    ap.add_argument("--storage", help="a local folder (default: a temporary one)")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for f in bench_rungs(Storage.parse(a.storage or tmp), a.trials, a.decisions):
            print(f"{f.key} = {f.value:.4g} ({f.label})", flush=True)


if __name__ == "__main__":
    main()
