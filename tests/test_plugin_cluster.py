"""Plugin code reaches a cluster's workers by shipping (flows/actors/shipping.py): a loopback cluster of a
head without CPUs and one worker node that cannot see the driver's copy of the example plugin. The plugin
lives only in a pip --target folder on the driver's PYTHONPATH; the driver runs from another folder (Ray
puts the driver's working directory on every worker's path); where `unshare -m` works, the worker node
runs in a mount namespace with that folder masked by an empty tmpfs. Shipping off, the node preflight
refuses the run; on, the trial trains on the worker node and its row carries the plugin's code hash."""
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pandas as pd
import pytest

from gan_tasks.methods.plugins import code_hash
from tests.conftest import EXAMPLE, free_port

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]
LOOPBACK_RAY = [sys.executable, "-m", "bench.loopback_cluster", "ray"]  # `ray` keeping 127.0.0.1 (PYTHONPATH: ROOT)
GANSWEEP = [sys.executable, "-c", "from flows.cli import app; app()"]


def _masking_works() -> bool:
    return subprocess.run(["unshare", "-m", "true"], capture_output=True).returncode == 0


def _start_worker(addr: str, hidden: Path, env: dict) -> bool:
    """The worker node, in a mount namespace where `hidden` is an empty tmpfs when possible; masked?"""
    start = [*LOOPBACK_RAY, "start", "--address", addr, "--node-ip-address", "127.0.0.1", "--num-cpus", "1"]
    if _masking_works():
        script = f'mount -t tmpfs tmpfs "{hidden}" && test -z "$(ls -A "{hidden}")" && exec "$@"'
        subprocess.run(["unshare", "-m", "sh", "-c", script, "sh", *start], check=True, env=env,
                       capture_output=True, timeout=180)
        return True
    subprocess.run(start, check=True, env=env, capture_output=True, timeout=180)
    return False


def test_plugin_code_is_shipped_to_a_worker_that_cannot_see_it(tmp_path, example_site):
    port = free_port()
    addr, temp = f"127.0.0.1:{port}", f"/tmp/rc{port}"
    # The nodes' environment: no plugin folder on any path (the driver's PYTHONPATH adds it below).
    env = {**os.environ, "RAY_ADDRESS": "", "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": uuid.uuid4().hex * 2,
           "PYTHONPATH": str(ROOT)}
    subprocess.run([*LOOPBACK_RAY, "start", "--head", "--port", str(port), "--temp-dir", temp, "--node-ip-address",
                    "127.0.0.1", "--num-cpus", "0", "--include-dashboard", "false"], check=True, env=env,
                   capture_output=True, timeout=180)
    try:
        masked = _start_worker(addr, example_site, env)
        drv = tmp_path / "driver"  # the driver's working directory: holds neither the plugin nor gansweep
        drv.mkdir()
        denv = {**env, "PYTHONPATH": os.pathsep.join([str(ROOT), str(example_site)])}
        run = [*GANSWEEP, "run", str(EXAMPLE / "sweep.yaml"), "--storage", str(tmp_path / "store"),
               "--ray-address", addr, "--set", "grid.loss=[rpgan-r1]", "--set", "grid.seed=[0]",
               "--set", "train.steps=40", "--set", "train.checkpoint_every=20", "--set", "train.log_every=20",
               "--set", "evaluation.n_samples=500", "--wait-for-resources", "60"]

        # Negative control: not shipped, no node can import the plugin, and the run stops before any trial.
        r = subprocess.run([*run, "--sweep-id", "unshipped", "--no-ship-plugins"], capture_output=True, text=True,
                           env=denv, cwd=drv, timeout=400)
        out = r.stdout + r.stderr
        assert r.returncode == 2, out[-3000:]
        assert "Traceback" not in out, out[-3000:]
        line = next(x for x in out.splitlines() if x.startswith("error:"))
        assert "plugin module 'gansweep_example" in line and "does not import on node " in line, line
        assert "ModuleNotFoundError: No module named 'gansweep_example'" in line, line
        assert not (tmp_path / "store" / "sweeps" / "unshipped" / "trials").exists()

        r = subprocess.run([*run, "--sweep-id", "shipped"], capture_output=True, text=True, env=denv, cwd=drv,
                           timeout=600)
        out = r.stdout + r.stderr
        assert r.returncode == 0, out[-4000:]
        assert "plugin code imports on every node (1 package(s) shipped)" in out, out[-3000:]
        nodes = subprocess.run(
            [sys.executable, "-c", "import ray, json; from flows.actors.session import connect_ray; connect_ray('%s'); "
             "print(json.dumps({n['NodeID']: n['Resources'].get('CPU', 0) for n in ray.nodes() if n['Alive']}))"
             % addr], check=True, capture_output=True, text=True, env=env, cwd=drv, timeout=120)
        workers = {nid for nid, cpus in json.loads(nodes.stdout.strip().splitlines()[-1]).items() if cpus > 0}
        assert len(workers) == 1
        trials = pd.read_parquet(tmp_path / "store" / "sweeps" / "shipped" / "trials")
        assert (trials.status == "completed").all() and len(trials) == 1
        assert set(trials.node) == workers  # trained on the node that could not see the plugin
        used = json.loads(trials.plugins.iloc[0])
        assert {(p["kind"], p["name"]) for p in used} == {("loss", "rpgan-r1"), ("model", "deep-mlp"),
                                                          ("metric", "energy-distance")}
        h = code_hash(example_site / "gansweep_example")
        assert {(p["dist"], p["version"], p["code_hash"]) for p in used} == {("gansweep-example", "0.1.0", h)}
        evals = pd.read_parquet(tmp_path / "store" / "sweeps" / "shipped" / "evaluations")
        assert "energy_distance" in set(evals.metric)  # the plugin metric, measured on the worker too
        print(f"masked: {masked}\nunshipped: {line}\n{trials[['trial_id', 'node', 'plugins']].to_string()}")
    finally:
        subprocess.run(["pkill", "-9", "-f", temp], capture_output=True, timeout=60)
