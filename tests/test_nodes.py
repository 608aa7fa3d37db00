"""A worker node killed mid-sweep (kill -9 of its raylet and every process below it) on a loopback cluster
(bench/loopback_cluster.py): the sweep completes, no row is lost, the trial that was on the node resumed on
the other one from its last checkpoint, its row lists both nodes, and every trial's metric steps are each
logged exactly once. `pytest -s` prints the trial rows (docs/reliability.md shows a run's)."""
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from tests.conftest import tiny_config

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]
GANSWEEP = [sys.executable, "-c", "from flows.cli import app; app()"]
COLUMNS = ["trial_id", "loss", "seed", "status", "steps", "nodes", "resumed_from", "preemptions"]


def sweep_command(cluster, tmp_path: Path, sweep_id: str, resources: dict | None = None,
                  **over) -> tuple[list[str], dict, Path]:
    """`gansweep run` of a small ring-8 sweep on the cluster: 1 CPU and the gpu_node label a trial, run from a
    folder of its own (Ray puts the driver's working directory on the workers' path), with the cluster's token."""
    cfg = tiny_config(resources={"cpus_per_trial": 1, "custom": {"gpu_node": 1}, **(resources or {})}, **over)
    path = tmp_path / f"{sweep_id}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    drv = tmp_path / "driver"
    drv.mkdir(exist_ok=True)
    env = {**cluster.env, "PYTHONPATH": str(ROOT)}
    return [*GANSWEEP, "run", str(path), "--storage", str(tmp_path / "store"), "--sweep-id", sweep_id,
            "--ray-address", cluster.address, "--wait-for-resources", "60"], env, drv


def rows(store: Path, sweep_id: str) -> pd.DataFrame:
    folder = store / "sweeps" / sweep_id / "trials"
    if not folder.exists():
        return pd.DataFrame()
    frames = []
    for f in folder.glob("*.parquet"):
        try:
            frames.append(pd.read_parquet(f))
        except Exception:  # noqa: BLE001 - being written
            pass
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def checkpoint_step(store: Path, sweep_id: str, trial_id: str) -> int:
    d = store / "sweeps" / sweep_id / "checkpoints" / trial_id
    return max((int(p.name[5:14]) for p in d.glob("step-*.pt")), default=0) if d.exists() else 0


def assert_metrics_contiguous(store: Path, sweep_id: str, trials: pd.DataFrame, log_every: int) -> None:
    m = pd.read_parquet(store / "sweeps" / sweep_id / "metrics")
    for t in trials.itertuples():
        steps = sorted(m[m.trial_id == t.trial_id].step)
        assert steps == list(range(log_every, t.steps + 1, log_every)), (t.trial_id, steps)


def wait_for_victim(cluster, store: Path, sweep_id: str, proc, at_least: int, ids: dict | None = None):
    """(trial id, Node) of a trial running on a worker node with a checkpoint at step >= at_least. ids: the
    cluster's node_ids(), asked here unless given (a driver of its own: seconds)."""
    ids, t0 = ids or cluster.node_ids(), time.monotonic()
    while time.monotonic() - t0 < 300 and proc.poll() is None:
        time.sleep(0.3)
        r = rows(store, sweep_id)
        for row in r[r.status == "running"].itertuples() if not r.empty else []:
            on_worker = row.node in ids and ids[row.node].index > 0
            if on_worker and checkpoint_step(store, sweep_id, row.trial_id) >= at_least:
                return row.trial_id, ids[row.node]
    raise AssertionError("no trial reached a checkpoint on a worker node")


def test_killed_node_loses_no_row_and_its_trial_resumes_on_another(loopback_cluster, tmp_path):
    cluster = loopback_cluster
    workers = {n.node_id for n in cluster.node_ids().values() if n.index > 0}
    t0 = time.monotonic()
    cmd, env, drv = sweep_command(cluster, tmp_path, "lost", grid={"seed": [0, 1]},
                                  train={"steps": 2000, "checkpoint_every": 100})
    store = tmp_path / "store"
    proc = subprocess.Popen(cmd, env=env, cwd=drv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        victim = wait_for_victim(cluster, store, "lost", proc, 200)
        killed_at = checkpoint_step(store, "lost", victim[0])
        cluster.kill_node(victim[1])
        out, _ = proc.communicate(timeout=400)
    finally:
        if proc.poll() is None:
            proc.kill()
        cluster.add_node()  # back to 2 workers for the next test
    assert proc.returncode == 0, out[-4000:]
    assert "resuming it from its last checkpoint" in out, out[-3000:]
    trials = rows(store, "lost")
    print("\n" + trials[COLUMNS].to_string(index=False))
    print(f"sweep with a lost node: {time.monotonic() - t0:.0f} s")
    assert len(trials) == 4 and (trials.status == "completed").all()
    lost = trials.set_index("trial_id").loc[victim[0]]
    assert list(lost.nodes)[0] == victim[1].node_id and len(lost.nodes) == 2, lost.nodes
    assert lost.nodes[1] in workers - {victim[1].node_id}
    assert list(lost.resumed_from) == [0, lost.resumed_from[1]] and lost.resumed_from[1] >= killed_at
    assert set().union(*map(set, trials.nodes)) == workers  # trials spread over both nodes
    assert (trials.preemptions == 0).all()
    assert_metrics_contiguous(store, "lost", trials, 10)
    assert (store / "sweeps" / "lost" / "report" / "index.html").exists()


def test_a_label_no_node_offers_is_refused_in_one_line(loopback_cluster, tmp_path):
    """A trial asking for a custom resource no node advertises: one line naming it, exit 2, nothing run
    (the probe of the head's address passed: a Ray head with token authentication)."""
    cmd, env, drv = sweep_command(loopback_cluster, tmp_path, "tpu", resources={"custom": {"tpu_node": 1}})
    r = subprocess.run([*cmd, "--wait-for-resources", "3"], env=env, cwd=drv, capture_output=True, text=True,
                       timeout=300)
    err = [x for x in (r.stdout + r.stderr).splitlines() if x.startswith("error:")]
    assert r.returncode == 2 and len(err) == 1, r.stdout[-3000:] + r.stderr[-3000:]
    assert "resources.custom tpu_node: 1: no node of the Ray cluster" in err[0] and "gpu_node" in err[0], err
    assert "Traceback" not in r.stdout + r.stderr
    assert not (tmp_path / "store" / "sweeps").exists()
