"""Crash resume, idempotent sweeps, locks and failure isolation, on real Ray and Prefect."""
import io
import os
import signal
import time

import pandas as pd
import pytest
import ray
import torch
import yaml
from typer.testing import CliRunner

from flows.actors import make_actor
from flows.cli import app
from flows.lock import SweepLock, SweepLocked
from flows.sweep import sweep_flow
from gan_tasks.config import expand_grid, parse_config
from gan_tasks.datasets import ensure_dataset
from tests.conftest import tiny_config

pytestmark = pytest.mark.slow


def _final_state(storage, sweep_id, tid):
    names = [n for n in storage.ls("sweeps", sweep_id, "checkpoints", tid) if n.endswith(".pt")]
    return torch.load(io.BytesIO(storage.read_bytes("sweeps", sweep_id, "checkpoints", tid, names[-1])),
                      weights_only=True)


def test_sigkill_mid_training_resumes_bit_identical(ray_session, local_storage):
    cfg = parse_config(tiny_config(grid={"loss": ["wgan-gp"], "optimizer": ["adam"], "seed": [3]},
                                   train={"steps": 400, "checkpoint_every": 50, "log_every": 5}))
    trial = expand_grid(cfg)[0]
    ensure_dataset(local_storage, cfg.dataset.name, cfg.dataset.params)

    ref_actor = make_actor(0, 1)
    assert ray.get(ref_actor.train.remote(trial, local_storage, "ref"))["status"] == "completed"
    ray.kill(ref_actor)

    actor = make_actor(0, 1)
    pid = ray.get(actor.pid.remote())
    ref = actor.train.remote(trial, local_storage, "crash")
    while ray.get(actor.progress.remote())[0] < 120:  # past the checkpoints at 50 and 100
        time.sleep(0.02)
    os.kill(pid, signal.SIGKILL)
    killed_at = time.perf_counter()
    while True:  # the restarted actor reports progress again once training goes on
        step, _, _ = ray.get(actor.progress.remote())
        if 0 < step:
            break
        time.sleep(0.05)
    overhead = time.perf_counter() - killed_at
    row = ray.get(ref)
    assert ray.get(actor.pid.remote()) != pid  # it really was a new process
    ray.kill(actor)
    print(f"resume overhead: {overhead:.1f} s from SIGKILL to training again")
    assert row["status"] == "completed" and row["steps"] == 400

    a, b = _final_state(local_storage, "ref", trial.trial_id), _final_state(local_storage, "crash", trial.trial_id)
    assert a["step"] == b["step"] == 400
    for key in ("G", "D"):
        for name, tensor in a[key].items():
            assert torch.equal(tensor, b[key][name]), f"{key}.{name} differs after resume"
    assert torch.equal(a["rng_gen"], b["rng_gen"])

    m_ref = pd.read_parquet(local_storage.uri("sweeps", "ref", "metrics"))
    m_crash = pd.read_parquet(local_storage.uri("sweeps", "crash", "metrics"))
    assert list(m_crash.sort_values("step").step) == list(range(5, 401, 5))  # no gaps, no duplicates
    cols = ["step", "loss_d", "loss_g", "grad_norm_d", "grad_norm_g", "penalty"]
    pd.testing.assert_frame_equal(m_ref.sort_values("step")[cols].reset_index(drop=True),
                                  m_crash.sort_values("step")[cols].reset_index(drop=True))


DIVERGING = {"name": "sgd", "lr_g": 1e8, "lr_d": 1e8}  # explodes to inf within 10 steps


def test_failures_are_isolated_reruns_skip_and_force_retrains(ray_session, prefect_harness, local_storage, tmp_path):
    cfg = tiny_config(grid={"loss": ["non-saturating"], "optimizer": ["adam", DIVERGING], "seed": [0]})
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(cfg))
    r = CliRunner().invoke(app, ["run", str(path), "--storage", local_storage.url, "--sweep-id", "iso"])
    assert r.exit_code == 1, r.output
    assert "1 trial(s) did not complete" in r.output

    trials = pd.read_parquet(local_storage.uri("sweeps", "iso", "trials"))
    by_opt = trials.set_index("optimizer")
    assert by_opt.loc["adam", "status"] == "completed"
    assert by_opt.loc["sgd", "status"] == "diverged" and "non-finite" in by_opt.loc["sgd", "error"]
    html = local_storage.read_bytes("sweeps", "iso", "report", "index.html").decode()
    assert "diverged" in html and "completed" in html

    # Same sweep id again: the completed trial is skipped (its row is untouched), the other re-runs.
    first = by_opt.loc["adam", "started_at"]
    state = sweep_flow(cfg, local_storage.url, "iso", return_state=True)
    assert state.is_failed() and "1 of 2 trials did not complete" in state.message
    again = pd.read_parquet(local_storage.uri("sweeps", "iso", "trials")).set_index("optimizer")
    assert again.loc["adam", "started_at"] == first
    metrics = pd.read_parquet(local_storage.uri("sweeps", "iso", "metrics"))
    adam_id = again.loc["adam", "trial_id"]
    assert metrics[metrics.trial_id == adam_id].step.is_unique

    # --force retrains it from scratch.
    sweep_flow(cfg, local_storage.url, "iso", force=True, return_state=True)
    forced = pd.read_parquet(local_storage.uri("sweeps", "iso", "trials")).set_index("optimizer")
    assert forced.loc["adam", "started_at"] > first and forced.loc["adam", "status"] == "completed"


def test_second_run_of_a_locked_sweep_is_refused_before_any_work(local_storage):
    other = SweepLock(local_storage, "busy")
    other.acquire()
    try:
        with pytest.raises(SweepLocked, match="sweep busy is already running"):
            with SweepLock(local_storage, "busy"):
                pass
        # A different sweep id on the same storage is not affected.
        with SweepLock(local_storage, "free"):
            assert local_storage.exists("sweeps", "free", "lock.json")
        assert not local_storage.exists("sweeps", "free", "lock.json")
    finally:
        other.release()
    assert not local_storage.exists("sweeps", "busy", "lock.json")
    expired = SweepLock(local_storage, "stale", ttl=-1)  # a dead run's lock has expired
    expired.acquire()
    expired._stop.set()
    with SweepLock(local_storage, "stale"):
        pass
