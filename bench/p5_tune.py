"""P5 ray-tune: the P5 trials (the bare loop, data loaded from storage as ours do) as Ray Tune trials of 1 CPU
each (bench/tune_trials.py; a bench-only dependency: pip install -e '.[bench]'), in a subprocess timed from
start to exit like `gansweep run`, against the same ideal (P5's: the bare loops at the same concurrency).

Acceptance: none asserted; goal: above ours (`p5_many_trials`). Theoretical minimum: 1.0, as ours.
"""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time

import yaml

from bench.harness import Figure, trials_of
from bench.p5_many_trials import ROOT, _env
from gan_tasks.data.storage import Storage


def ray_tune_run(raw: dict, storage: Storage, workdir: str) -> float:
    """The same trials (bare loop, data loaded from storage as ours do) as Ray Tune trials, 1 CPU each,
    in a subprocess timed from start to exit like `gansweep run`."""
    cfg = os.path.join(workdir, "tune.yaml")
    with open(cfg, "w") as f:
        yaml.safe_dump(raw, f)
    for attempt in (1, 2):
        t0 = time.perf_counter()
        r = subprocess.run([sys.executable, "-m", "bench.tune_trials", cfg, storage.url, storage.endpoint_url or "",
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


def bench_tune(storage: Storage, raw: dict, ideal: float) -> list[Figure]:
    """P5 ray-tune: bench_many's trials run by Ray Tune, against the same ideal."""
    n = len(trials_of(raw))
    with tempfile.TemporaryDirectory() as tmp:
        wall = ray_tune_run(raw, storage, tmp)
    tag = f" [short: {n} trials]" if n < 256 else ""
    return [Figure("p5_ray_tune", wall / ideal, f"P5 ray-tune ratio ({n} trials, Ray Tune {_tune_version()}, same ideal)"),
            Figure("p5_ray_tune_s", wall, f"P5 ray-tune seconds{tag}")]


def _tune_version() -> str:
    import ray

    return ray.__version__
