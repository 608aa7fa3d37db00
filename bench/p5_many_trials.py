"""P5: many short trials, timed as a user pays for them: `gansweep run` in a subprocess, from command
start to exit, against an ideal (sum of bare-loop trial times / parallel slots), and the same trials
run by Ray Tune in a subprocess of its own (a bench-only dependency: pip install -e '.[bench]').

From the same run: start-up (command start to the first trial training), fan-in (last trial done to
report written), and a no-op re-run of a finished sweep (every trial done: nothing to train).
"""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone

import torch
import yaml

from gan_tasks.config import expand_grid, parse_config
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


TUNE = """
import sys, time, torch
t0 = time.perf_counter()
import ray
from ray import tune
from flows.actors import start_local_ray
from flows.bench import bare_loop, load_data
from gan_tasks.config import expand_grid, parse_config
from gan_tasks.data.storage import Storage
import yaml

raw, url, endpoint = yaml.safe_load(open(sys.argv[1])), sys.argv[2], sys.argv[3] or None
trials = expand_grid(parse_config(raw))

def trainable(config):
    torch.set_num_threads(1)  # one CPU per trial, as ours
    storage = Storage.parse(url, endpoint)
    t = trials[config["i"]]
    tune.report({"seconds": bare_loop(t, load_data(storage, t))})

start_local_ray(log_to_driver=False)
res = tune.Tuner(tune.with_resources(trainable, {"cpu": 1}),
                 param_space={"i": tune.grid_search(list(range(len(trials))))},
                 run_config=tune.RunConfig(storage_path=sys.argv[4], verbose=0)).fit()
assert not res.errors and len(res) == len(trials), res.errors
print("wall", time.perf_counter() - t0)
"""


def ray_tune_run(raw: dict, storage: Storage, workdir: str) -> float:
    """The same trials (bare loop, data loaded from storage as ours do) as Ray Tune trials, 1 CPU each,
    in a subprocess timed from start to exit like `gansweep run`."""
    cfg = os.path.join(workdir, "tune.yaml")
    with open(cfg, "w") as f:
        yaml.safe_dump(raw, f)
    for attempt in (1, 2):
        t0 = time.perf_counter()
        r = subprocess.run([sys.executable, "-c", TUNE, cfg, storage.url, storage.endpoint_url or "",
                            os.path.join(workdir, f"tune-results-{attempt}")], cwd=ROOT, env=_env(ROOT),
                           capture_output=True, text=True)
        if not r.returncode:
            return time.perf_counter() - t0
        # Seen once on the shared machine: the new local Ray's raylet gone before the driver registered.
        # A second start is timed afresh; any other failure, or a second one, is an error.
        if attempt == 2 or "Failed to register worker to Raylet" not in r.stderr:
            break
        print(f"Ray Tune's local Ray did not start; starting it again:\n{r.stderr[-500:]}")
    raise RuntimeError(f"Ray Tune run exited {r.returncode}:\n{(r.stdout + r.stderr)[-3000:]}")


def bench_many(storage: Storage, short: bool, run_id: str, n_slots: int,
               checkout: str = ROOT) -> tuple[list[tuple[str, float]], dict, float]:
    """P5 (ours) and the start-up, fan-in and no-op re-run seconds; also the config and the ideal
    seconds, for `bench_tune`. Full: 256 trials of ~1 s bare training, no-op re-run of a 64-trial
    sweep; short (CI): 16 trials, a 16-trial sweep re-run."""
    from flows.bench import _steps_for, bare_loop, bench_config, load_data

    n, n_noop = (16, 16) if short else (256, 64)
    tag = f" [short: {n} trials]" if short else ""
    raw = bench_config(_steps_for(storage, 1.0), n // 2)
    trials = expand_grid(parse_config(raw))
    data = load_data(storage, trials[0])
    sample = trials[:: max(1, n // 8)]  # 8 trials, timed before and after: n bare runs would double the bench

    def bare_mean() -> float:
        return sum(bare_loop(t, data) for t in sample) / len(sample)

    before = bare_mean()
    sid = f"bench-p5-{run_id}"
    wall, start = gansweep_run(raw, storage, sid, checkout)
    rows = storage.read_table("sweeps", sid, "trials").to_pandas()
    assert (rows.status == "completed").sum() == n, rows.status.value_counts()
    report = storage.fs.modified(storage.uri("sweeps", sid, "report", "index.html")).timestamp()
    bare = (before + bare_mean()) / 2  # a machine whose speed drifts biases neither side
    ideal = bare * n / n_slots
    noop_raw = bench_config(100, n_noop // 2)  # short trials: the re-run, not the first run, is measured
    noop_sid = f"bench-noop-{run_id}"
    gansweep_run(noop_raw, storage, noop_sid, checkout)
    noop, _ = gansweep_run(noop_raw, storage, noop_sid, checkout)
    return [(f"P5 many-trials ratio ({n} trials of ~{bare:.2f} s bare, {n_slots} slots, full flow)", wall / ideal),
            (f"P5 sweep seconds{tag}", wall), (f"P5 ideal seconds{tag}", ideal),
            (f"start-up seconds (command start to first trial training){tag}",
             (rows.started_at.min() - start).total_seconds()),
            (f"no-op re-run seconds (finished {n_noop}-trial sweep)", noop),
            (f"fan-in seconds (256 trials){tag}", report - rows.finished_at.max().timestamp())], raw, ideal


def bench_tune(storage: Storage, raw: dict, ideal: float) -> list[tuple[str, float]]:
    """P5 ray-tune: bench_many's trials run by Ray Tune, against the same ideal."""
    n = len(expand_grid(parse_config(raw)))
    with tempfile.TemporaryDirectory() as tmp:
        wall = ray_tune_run(raw, storage, tmp)
    tag = f" [short: {n} trials]" if n < 256 else ""
    return [(f"P5 ray-tune ratio ({n} trials, Ray Tune {_tune_version()}, same ideal)", wall / ideal),
            (f"P5 ray-tune seconds{tag}", wall)]


def _tune_version() -> str:
    import ray

    return ray.__version__


if __name__ == "__main__":  # "before" figures: python -m flows.bench_trials STORAGE OTHER_CHECKOUT [--short]
    from flows.actors import start_local_ray

    torch.set_num_threads(1)
    start_local_ray(log_to_driver=False)
    import ray

    slots_ = int(ray.cluster_resources().get("CPU", 1))
    rid = f"{datetime.now(timezone.utc):%Y%m%d-%H%M%S}"
    figures, _, _ = bench_many(Storage.parse(sys.argv[1]), "--short" in sys.argv, rid, slots_,
                               os.path.abspath(sys.argv[2]))
    for name, value in figures:
        print(f"{name} = {value:.3f}")
