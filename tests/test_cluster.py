"""An existing multi-node Ray cluster on 127.0.0.1 (every server bound to loopback): a request no node
can hold fails in preflight with exit 2; trials asking for a GPU land on the GPU node."""
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pandas as pd
import psutil
import pytest
import yaml

from tests.conftest import free_port, tiny_config

pytestmark = pytest.mark.slow
BIN = Path(sys.executable).parent


ROOT = Path(__file__).resolve().parents[1]
LOOPBACK_RAY = [sys.executable, "-m", "bench.loopback_cluster", "ray"]  # `ray` keeping 127.0.0.1


def _ray(*args, env):
    subprocess.run([*LOOPBACK_RAY, *args], check=True, env=env, cwd=ROOT, capture_output=True, timeout=180)


def _cluster_listeners(temp: str) -> set[str]:
    """Addresses that the cluster's processes (their command line names its session dir) listen on."""
    pids = set()
    for p in psutil.process_iter(["cmdline"]):
        if temp in " ".join(p.info["cmdline"] or []):
            pids |= {p.pid} | {c.pid for c in p.children(recursive=True)}
    return {c.laddr.ip for c in psutil.net_connections("inet") if c.status == psutil.CONN_LISTEN and c.pid in pids}


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
            [sys.executable, "-c", "import ray, json; from flows.actors.session import connect_ray; connect_ray('%s'); "
             "print(json.dumps({n['NodeID']: n['Resources'] for n in ray.nodes() if n['Alive']}))" % addr],
            check=True, capture_output=True, text=True, env=env, timeout=120).stdout.strip().splitlines()[-1]
        gpu_nodes = {nid for nid, res in json.loads(nodes).items() if res.get("GPU", 0) > 0}
        assert len(gpu_nodes) == 1
        listeners = _cluster_listeners(temp)
        assert listeners and listeners <= {"127.0.0.1", "::ffff:127.0.0.1", "::1"}, listeners

        # No node offers 2 GPUs: preflight says so within the wait, exit 2, nothing written.
        big = tmp_path / "big.yaml"
        big.write_text(yaml.safe_dump(tiny_config(resources={"gpus_per_trial": 2, "cpus_per_trial": 1})))
        r = subprocess.run([str(BIN / "gansweep"), "run", str(big), "--storage", str(tmp_path / "none"),
                            "--ray-address", addr, "--wait-for-resources", "3"],
                           capture_output=True, text=True, env=env, timeout=200)
        out = r.stdout + r.stderr
        assert r.returncode == 2, out[-3000:]
        assert "waiting up to 3 s" in out and "resources.gpus_per_trial 2" in out and "Traceback" not in out, out[-3000:]
        assert not (tmp_path / "none" / "sweeps").exists()

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
