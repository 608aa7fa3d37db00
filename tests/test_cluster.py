"""An existing multi-node Ray cluster on 127.0.0.1: trials asking for a GPU land on the GPU node."""
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pandas as pd
import pytest
import yaml

from tests.conftest import free_port, tiny_config

pytestmark = pytest.mark.slow
BIN = Path(sys.executable).parent


def _ray(*args, env):
    subprocess.run([str(BIN / "ray"), *args], check=True, env=env, capture_output=True, timeout=180)


def test_sweep_on_existing_cluster_runs_trials_on_the_gpu_node(tmp_path):
    port = free_port()
    # Token authentication with a token of this test's own, for every node and driver.
    env = {**os.environ, "RAY_ADDRESS": "", "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": uuid.uuid4().hex * 2}
    addr = f"127.0.0.1:{port}"
    temp = f"/tmp/rc{port}"  # its own session dir: we stop exactly this cluster, not the tests' own Ray
    _ray("start", "--head", "--port", str(port), "--temp-dir", temp, "--node-ip-address", "127.0.0.1", "--num-cpus", "1",
         "--num-gpus", "0", "--include-dashboard", "false", "--resources", json.dumps({"head": 1}), env=env)
    try:
        # A second node that advertises a GPU (the trial falls back to CPU torch, Ray still places it there).
        _ray("start", "--address", addr, "--node-ip-address", "127.0.0.1", "--num-cpus", "2", "--num-gpus", "1",
             "--resources", json.dumps({"gpu_node": 1}), env=env)
        nodes = subprocess.run(
            [sys.executable, "-c", "import ray, json; ray.init(address='%s'); "
             "print(json.dumps({n['NodeID']: n['Resources'] for n in ray.nodes() if n['Alive']}))" % addr],
            check=True, capture_output=True, text=True, env=env, timeout=120).stdout.strip().splitlines()[-1]
        gpu_nodes = {nid for nid, res in json.loads(nodes).items() if res.get("GPU", 0) > 0}
        assert len(gpu_nodes) == 1

        cfg = tiny_config(resources={"gpus_per_trial": 0.5, "cpus_per_trial": 1})
        path = tmp_path / "sweep.yaml"
        path.write_text(yaml.safe_dump(cfg))
        store = tmp_path / "store"
        r = subprocess.run([str(BIN / "gansweep"), "run", str(path), "--storage", str(store), "--sweep-id", "cl",
                            "--ray-address", addr], capture_output=True, text=True, env=env, timeout=400)
        assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
        trials = pd.read_parquet(store / "sweeps" / "cl" / "trials")
        assert (trials.status == "completed").all() and len(trials) == 2
        assert set(trials.node) == gpu_nodes  # both trials trained on the node that advertises a GPU
        assert (trials.device == "cpu").all()  # no CUDA on this machine: torch fell back to CPU
    finally:
        subprocess.run(["pkill", "-9", "-f", temp], capture_output=True, timeout=60)
