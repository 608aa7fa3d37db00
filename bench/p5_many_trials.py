"""P5 many trials: 256 short trials (~1 s of bare loop each; short: 16), timed as a user pays for them:
`gansweep run` in a subprocess, from command start to exit, against an ideal: the same trials as bare loops
at the flow's concurrency (`n_slots` processes at once, bench/harness.py: bare_concurrent), half right
before and half right after the sweep, so the machine's own cost of running loops at once is on both sides.
Also the old ratio, `p5_many_trials_vs_serial`: against bare seconds per trial (8 trials timed one at a
time) x trials / slots. From the same run: start-up (command start to the first trial training), fan-in
(last trial done to report written), and a no-op re-run of a finished sweep.

Acceptance: none asserted; goals (bench/results.md): `p5_many_trials` <= 1.5, `startup_s` <= 8,
`noop_rerun_s` <= 5, `fan_in_s` <= 15. Theoretical minimum of the ratio: 1.0 (`p5_many_trials_vs_serial`:
the machine's contention, contention.py); of the others: Python's, Ray's and the API's start, and one listing.
"""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone

import yaml

from bench.harness import Figure, bare_concurrent, bare_loop, bench_config, load_data, steps_for, trials_of
from gan_tasks.data.storage import Storage

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _env(checkout: str) -> dict:
    """The command's environment: the embedded default (no PREFECT_API_URL: the temporary API), a local
    Ray of its own (not this process's), this checkout's code first on the path (Ray's workers too)."""
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    return {**env, "RAY_ADDRESS": "", "PYTHONPATH": checkout, "COLUMNS": "250"}


def gansweep_run(raw: dict, storage: Storage, sweep_id: str, checkout: str = ROOT) -> tuple[float, datetime]:
    """`gansweep run` of this config in a subprocess; (wall seconds, UTC start)."""
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
        yaml.safe_dump(raw, f)
    cmd = [sys.executable, "-m", "flows.cli", "run", f.name, "--storage", storage.url, "--sweep-id", sweep_id]
    if storage.endpoint_url:
        cmd += ["--s3-endpoint-url", storage.endpoint_url]
    start, t0 = datetime.now(timezone.utc), time.perf_counter()
    r = subprocess.run(cmd, cwd=checkout, env=_env(checkout), capture_output=True, text=True)
    wall = time.perf_counter() - t0
    os.unlink(f.name)
    if r.returncode:
        raise RuntimeError(f"{' '.join(cmd)} exited {r.returncode}:\n{(r.stdout + r.stderr)[-3000:]}")
    return wall, start


def bench_many(storage: Storage, short: bool, run_id: str, n_slots: int,
               checkout: str = ROOT) -> tuple[list[Figure], dict, float]:
    """P5 (ours) and the start-up, fan-in and no-op re-run seconds; also the config and the ideal
    seconds (bare loops at the same concurrency), for `bench_tune`. Full: 256 trials of ~1 s bare training, no-op re-run of a 64-trial
    sweep; short (CI): 16 trials, a 16-trial sweep re-run."""
    n, n_noop = (16, 16) if short else (256, 64)
    tag = f" [short: {n} trials]" if short else ""
    raw = bench_config(steps_for(storage, 1.0), n // 2)
    trials = trials_of(raw)
    data = load_data(storage, trials[0])
    sample = trials[:: max(1, n // 8)]  # 8 trials, timed before and after: n bare runs would double the bench

    def bare_mean() -> float:
        return sum(bare_loop(t, data) for t in sample) / len(sample)

    before = bare_mean()
    conc_before, _ = bare_concurrent(trials[::2], data, n_slots)
    sid = f"bench-p5-{run_id}"
    wall, start = gansweep_run(raw, storage, sid, checkout)
    conc_after, _ = bare_concurrent(trials[1::2], data, n_slots)
    rows = storage.read_table("sweeps", sid, "trials").to_pandas()
    assert (rows.status == "completed").sum() == n, rows.status.value_counts()
    report = storage.fs.modified(storage.uri("sweeps", sid, "report", "index.html")).timestamp()
    bare = (before + bare_mean()) / 2  # a machine whose speed drifts biases neither side
    ideal, ideal_serial = conc_before + conc_after, bare * n / n_slots
    noop_raw = bench_config(100, n_noop // 2)  # short trials: the re-run, not the first run, is measured
    noop_sid = f"bench-noop-{run_id}"
    gansweep_run(noop_raw, storage, noop_sid, checkout)
    noop, _ = gansweep_run(noop_raw, storage, noop_sid, checkout)
    figures = [Figure("p5_many_trials", wall / ideal, f"P5 many-trials ratio, ideal: bare loops {n_slots} at "
                      f"once ({n} trials of ~{bare:.2f} s bare, full flow)"),
               Figure("p5_many_trials_vs_serial", wall / ideal_serial, f"P5 many-trials ratio, ideal: bare "
                      f"loop one at a time x {n} / {n_slots} slots"),
               Figure("p5_sweep_s", wall, f"P5 sweep seconds{tag}"),
               Figure("p5_ideal_s", ideal, f"P5 ideal seconds: bare loops {n_slots} at once{tag}"),
               Figure("p5_ideal_serial_s", ideal_serial, f"P5 ideal seconds: bare loop one at a time / slots{tag}"),
               Figure("startup_s", (rows.started_at.min() - start).total_seconds(),
                      f"start-up seconds (command start to first trial training){tag}"),
               Figure("noop_rerun_s", noop, f"no-op re-run seconds (finished {n_noop}-trial sweep)"),
               Figure("fan_in_s", report - rows.finished_at.max().timestamp(), f"fan-in seconds (256 trials){tag}")]
    return figures, raw, ideal


if __name__ == "__main__":  # "before" figures: python -m bench.p5_many_trials STORAGE OTHER_CHECKOUT [--short]
    import torch

    from flows.actors.session import start_local_ray
    from gan_tasks.config import utc_stamp

    torch.set_num_threads(1)
    start_local_ray(log_to_driver=False)
    import ray

    slots_ = int(ray.cluster_resources().get("CPU", 1))
    rid = utc_stamp()
    figures, _, _ = bench_many(Storage.parse(sys.argv[1]), "--short" in sys.argv, rid, slots_,
                               os.path.abspath(sys.argv[2]))
    for fig in figures:
        print(f"{fig.key} = {fig.value:.3f}  ({fig.label})")
