"""Where the seconds of a many-trials sweep go: `gansweep run` as a user runs it, timed from outside.

    python bench/profile_sweep.py [--trials 64] [--seconds 0.6] [--storage DIR] [--checkout DIR]

Runs a sweep of N ring-8 MLP trials (2 losses x N/2 seeds, each ~SECONDS of bare training here)
with `gansweep run` in a subprocess, stamps every line it prints with the time it arrived, then
reads the trials' own start/finish times from storage and prints the phases: command start to the
temporary Prefect API up, to the flow run, to the first trial training, the trials, last trial done
to the command's end; trial wall time in actors / bare; then the same command again (a no-op
re-run of the finished sweep). --checkout DIR runs another checkout's code (the "before" figures).
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from bench.harness import bench_config, steps_for  # noqa: E402
from gan_tasks.data.storage import Storage  # noqa: E402


def timed_run(cmd: list[str], checkout: str) -> tuple[float, datetime, list[tuple[float, str]]]:
    """Runs cmd in checkout (its code first on the path, Ray's workers too); (wall seconds, UTC start,
    [(seconds since start, line)])."""
    start, t0 = datetime.now(timezone.utc), time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1, cwd=checkout,
                         env={**os.environ, "COLUMNS": "250", "PYTHONPATH": checkout})
    lines = [(time.perf_counter() - t0, line.rstrip()) for line in p.stdout]
    p.wait()
    wall = time.perf_counter() - t0
    if p.returncode:
        print("\n".join(l for _, l in lines[-30:]))
        raise SystemExit(f"{cmd} exited {p.returncode}")
    return wall, start, lines


def first(lines: list[tuple[float, str]], text: str) -> float:
    return next((t for t, l in lines if text in l), float("nan"))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--trials", type=int, default=64)
    ap.add_argument("--seconds", type=float, default=0.6)
    ap.add_argument("--storage", default=None)
    ap.add_argument("--checkout", default=os.path.dirname(os.path.dirname(HERE)))
    a = ap.parse_args()
    root = a.storage or tempfile.mkdtemp(prefix="gansweep-profile-")
    st = Storage.parse(root)
    steps = steps_for(st, a.seconds)
    raw = bench_config(steps, a.trials // 2)
    cfg = os.path.join(root, "profile.yaml")
    with open(cfg, "w") as f:
        yaml.safe_dump(raw, f)
    sid = f"profile-{datetime.now(timezone.utc):%H%M%S}"
    cmd = [sys.executable, "-m", "flows.cli", "run", cfg, "--storage", root, "--sweep-id", sid]
    wall, start, lines = timed_run(cmd, a.checkout)
    rows = st.read_table("sweeps", sid, "trials").to_pandas()
    t_first = (rows.started_at.min() - start).total_seconds()
    t_last = (rows.finished_at.max() - start).total_seconds()
    bare = a.seconds * len(rows)
    again, _, _ = timed_run(cmd, a.checkout)
    phases = [
        ("command start -> temporary Prefect API starting", first(lines, "temporary Prefect API on")),
        ("command start -> flow run created", first(lines, "Beginning flow run")),
        ("command start -> first trial training (trial row started_at)", t_first),
        ("first trial -> last trial done", t_last - t_first),
        ("last trial done -> command end (evaluation, rankings, report)", wall - t_last),
        ("command wall", wall),
        (f"ideal: {len(rows)} x {a.seconds} s bare / 2 slots", bare / 2),
        ("trial wall in actors, mean (bare ~%.2f s)" % a.seconds, rows.wall_seconds.mean()),
        ("no-op re-run of the finished sweep", again),
    ]
    print(f"{len(rows)} trials x {steps} steps, storage {root}")
    for name, sec in phases:
        print(f"  {name:<66} {sec:7.1f} s")


if __name__ == "__main__":
    main()
