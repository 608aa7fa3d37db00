"""A sweep whose run died mid-trial: the same sweep id again skips what completed and resumes the rest."""
import io
import json
import os
import socket
import time

import pandas as pd
import pytest
import ray
import torch

from flows.actors.trial_actor import make_actor
from flows.run.flow import sweep_flow
from gan_tasks.config import expand_grid, parse_config
from gan_tasks.data.datasets import ensure_dataset
from tests.conftest import tiny_config

pytestmark = pytest.mark.slow


def _last_checkpoint(storage, sweep_id, tid) -> dict:
    names = [n for n in storage.ls("sweeps", sweep_id, "checkpoints", tid) if n.endswith(".pt")]
    return torch.load(io.BytesIO(storage.read_bytes("sweeps", sweep_id, "checkpoints", tid, names[-1])),
                      weights_only=True)


def _inode(storage, *parts) -> int:
    return os.stat(storage.uri(*parts)).st_ino


def test_rerun_after_a_dead_run_skips_completed_and_resumes_unfinished(ray_session, prefect_harness, local_storage):
    cfg = tiny_config(grid={"loss": ["non-saturating"], "optimizer": ["adam"], "seed": [0, 1]},
                      train={"steps": 200, "checkpoint_every": 50, "log_every": 10})
    sweep = parse_config(cfg)
    done, cut = expand_grid(sweep)
    ensure_dataset(local_storage, sweep.dataset.name, sweep.dataset.params)

    # The reference: trial `cut` trained without interruption, in the same kind of actor the flow uses.
    actor = make_actor(0, 1)
    assert ray.get(actor.train.remote(cut, local_storage, "ref"))["status"] == "completed"
    # The night that died: `done` completed, then the run's process was killed while `cut` trained.
    assert ray.get(actor.train.remote(done, local_storage, "night"))["status"] == "completed"
    pid = ray.get(actor.pid.remote())
    ref = actor.train.remote(cut, local_storage, "night")
    while ray.get(actor.progress.remote())[:2] != (120, 200):  # past its checkpoints at 50 and 100
        time.sleep(0.01)
    ray.kill(actor, no_restart=True)  # SIGKILL, and no restart: as if the whole machine went away
    with pytest.raises(ray.exceptions.RayActorError):
        ray.get(ref)
    # What it left: a lock whose owner process is gone, a 'running' row, checkpoints, early metrics.
    dead = {"owner": f"{socket.gethostname()}:{pid}:deadbeef", "expires_at": time.time() + 300}
    local_storage.write_bytes(json.dumps(dead).encode(), "sweeps", "night", "lock.json")
    rows = pd.read_parquet(local_storage.uri("sweeps", "night", "trials")).set_index("trial_id")
    assert rows.loc[cut.trial_id, "status"] == "running"
    kept = {"row": _inode(local_storage, "sweeps", "night", "trials", f"{done.trial_id}.parquet"),
            "early": _inode(local_storage, "sweeps", "night", "metrics", f"{cut.trial_id}-000000010.parquet")}

    out = sweep_flow(cfg, local_storage.url, "night")
    assert out["not_completed"] == 0
    rows = pd.read_parquet(local_storage.uri("sweeps", "night", "trials")).set_index("trial_id")
    assert (rows.status == "completed").all() and len(rows) == 2
    # Completed: skipped, its row not even rewritten. Unfinished: resumed, its early metrics kept as they were.
    assert _inode(local_storage, "sweeps", "night", "trials", f"{done.trial_id}.parquet") == kept["row"]
    assert _inode(local_storage, "sweeps", "night", "metrics", f"{cut.trial_id}-000000010.parquet") == kept["early"]
    assert not local_storage.exists("sweeps", "night", "lock.json")  # the stale lock was taken over and released

    a, b = _last_checkpoint(local_storage, "ref", cut.trial_id), _last_checkpoint(local_storage, "night", cut.trial_id)
    assert a["step"] == b["step"] == 200
    for net in ("G", "D"):
        for name, tensor in a[net].items():
            assert torch.equal(tensor, b[net][name]), f"{net}.{name} differs after resume"
    metrics = pd.read_parquet(local_storage.uri("sweeps", "night", "metrics"))
    for tid in (done.trial_id, cut.trial_id):
        assert sorted(metrics[metrics.trial_id == tid].step) == list(range(10, 201, 10))  # no gaps, no duplicates
    print(f"{len(metrics)} metric rows checked for gaps/duplicates after a re-run of a dead sweep")
    m_ref = pd.read_parquet(local_storage.uri("sweeps", "ref", "metrics")).sort_values("step").reset_index(drop=True)
    m_cut = metrics[metrics.trial_id == cut.trial_id].sort_values("step").reset_index(drop=True)
    cols = ["step", "loss_d", "loss_g", "grad_norm_d", "grad_norm_g"]
    pd.testing.assert_frame_equal(m_ref[cols], m_cut[cols])
