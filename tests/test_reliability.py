"""Crash resume, idempotent sweeps, locks and failure isolation, on real Ray and Prefect."""
import io
import json
import os
import signal
import socket
import subprocess
import time

import pandas as pd
import pytest
import ray
import torch
import yaml
from typer.testing import CliRunner

from flows.actors.trial_actor import make_actor
from flows.cli import app
from flows.guard.lock import SweepLock, SweepLocked
from flows.run.flow import sweep_flow
from gan_tasks.config import expand_grid, parse_config
from gan_tasks.data.datasets import ensure_dataset
from tests.conftest import tiny_config

pytestmark = pytest.mark.slow


def _final_state(storage, sweep_id, tid):
    names = [n for n in storage.ls("sweeps", sweep_id, "checkpoints", tid) if n.endswith(".pt")]
    return torch.load(io.BytesIO(storage.read_bytes("sweeps", sweep_id, "checkpoints", tid, names[-1])),
                      weights_only=True)


def test_sigkill_mid_training_resumes_bit_identical(ray_session, local_storage):
    cfg = parse_config(tiny_config(grid={"loss": ["wgan-gp"], "optimizer": ["adam"], "seed": [3]},
                                   train={"steps": 300, "checkpoint_every": 50, "log_every": 5}))
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
    print(f"resume overhead: {overhead:.1f} s from SIGKILL to training again; 60 metric rows checked")
    assert row["status"] == "completed" and row["steps"] == 300

    a, b = _final_state(local_storage, "ref", trial.trial_id), _final_state(local_storage, "crash", trial.trial_id)
    assert a["step"] == b["step"] == 300
    for key in ("G", "D"):
        for name, tensor in a[key].items():
            assert torch.equal(tensor, b[key][name]), f"{key}.{name} differs after resume"
    assert torch.equal(a["rng_gen"], b["rng_gen"])

    m_ref = pd.read_parquet(local_storage.uri("sweeps", "ref", "metrics"))
    m_crash = pd.read_parquet(local_storage.uri("sweeps", "crash", "metrics"))
    assert list(m_crash.sort_values("step").step) == list(range(5, 301, 5))  # no gaps, no duplicates
    cols = ["step", "loss_d", "loss_g", "grad_norm_d", "grad_norm_g", "penalty"]
    pd.testing.assert_frame_equal(m_ref.sort_values("step")[cols].reset_index(drop=True),
                                  m_crash.sort_values("step")[cols].reset_index(drop=True))


DIVERGING = {"name": "sgd", "lr_g": 10.0, "lr_d": 10.0}  # the largest lr validation allows: inf by step 3


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


def test_a_rerun_compares_the_stored_config_by_its_trials_not_its_text(local_storage):
    """A config.yaml written by an older gansweep (fields added since are missing from its text) is
    the same sweep when today's parser expands it to the same trials; anything else is refused."""
    from flows.run.flow import prepare
    from gan_tasks.config import ConfigError, dump_config

    cfg = tiny_config(grid={"loss": ["non-saturating", "lsgan-011"], "optimizer": ["adam"], "seed": [0, 1]})
    sweep = parse_config(cfg)
    path = ("sweeps", "old", "config.yaml")
    old_text = yaml.safe_dump(cfg).encode()  # only the keys the user wrote: no tricks, pack_seeds, ...
    assert old_text != dump_config(sweep).encode()  # what the text comparison refused
    local_storage.write_bytes(old_text, *path)
    prepare.fn(sweep, local_storage, "old")
    assert local_storage.read_bytes(*path) == old_text  # kept: it is what was run
    assert local_storage.exists("datasets")  # and the run goes on: the dataset is there
    # The grid in another order is the same set of trials.
    reordered = parse_config(tiny_config(grid={"loss": ["lsgan-011", "non-saturating"], "optimizer": ["adam"],
                                               "seed": [1, 0]}))
    prepare.fn(reordered, local_storage, "old")

    # A new sweep id gets today's dump.
    prepare.fn(sweep, local_storage, "new")
    assert local_storage.read_bytes("sweeps", "new", "config.yaml") == dump_config(sweep).encode()

    refused = "sweep old exists in .* with a different config; choose another --sweep-id"
    for other in (tiny_config(grid={"loss": ["non-saturating", "lsgan-011"], "optimizer": ["adam"], "seed": [0]}),
                  tiny_config(grid=cfg["grid"], train={"steps": 61})):
        with pytest.raises(ConfigError, match=refused):  # other trials (fewer seeds, other training)
            prepare.fn(parse_config(other), local_storage, "old")
    for stored in (yaml.safe_dump({**cfg, "retired_option": 1}).encode(),  # no longer parses
                   yaml.safe_dump({**cfg, "grid": {**cfg["grid"], "loss": ["gone-loss"]}}).encode(),
                   b"name: [unclosed", b"\xff\xfe not text"):
        local_storage.write_bytes(stored, *path)
        with pytest.raises(ConfigError, match=refused):
            prepare.fn(sweep, local_storage, "old")
        assert local_storage.read_bytes(*path) == stored  # a refused run writes nothing


def test_a_refused_rerun_is_not_retried(prefect_harness, local_storage):
    """prepare retries storage hiccups, but a config refusal fails at once: one task run attempt."""
    import asyncio

    from prefect import flow
    from prefect.client.orchestration import get_client

    from flows.run.flow import prepare
    from gan_tasks.config import ConfigError

    prepare.fn(parse_config(tiny_config()), local_storage, "taken-id")

    @flow
    def rerun():
        return [prepare(parse_config(tiny_config(train={"steps": 61})), local_storage, "taken-id", return_state=True)]

    state = rerun()[0]  # in a list: a failed state returned bare would fail the flow itself
    assert state.is_failed() and isinstance(state.result(raise_on_failure=False), ConfigError)

    async def attempts() -> int:
        async with get_client() as client:
            return (await client.read_task_run(state.state_details.task_run_id)).run_count

    assert asyncio.run(attempts()) == 1


def _foreign_lock(storage, sweep_id, owner, expires_in):
    body = {"owner": owner, "expires_at": time.time() + expires_in}
    storage.write_bytes(json.dumps(body).encode(), "sweeps", sweep_id, "lock.json")


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

    # A live run elsewhere, not expired: refused. Expired: taken over.
    _foreign_lock(local_storage, "remote", "other-host:1:abc", 300)
    with pytest.raises(SweepLocked, match="other-host:1:abc"):
        SweepLock(local_storage, "remote").acquire()
    _foreign_lock(local_storage, "remote", "other-host:1:abc", -1)
    with SweepLock(local_storage, "remote") as lock:
        assert json.loads(local_storage.read_bytes("sweeps", "remote", "lock.json"))["owner"] == lock.owner
    # On this host: a live owner process blocks, a dead one does not wait for the expiry.
    _foreign_lock(local_storage, "here", f"{socket.gethostname()}:{os.getppid()}:abc", 300)
    with pytest.raises(SweepLocked):
        SweepLock(local_storage, "here").acquire()
    gone = subprocess.Popen(["true"])
    gone.wait()
    _foreign_lock(local_storage, "here", f"{socket.gethostname()}:{gone.pid}:abc", 300)
    with SweepLock(local_storage, "here"):
        pass


def test_the_cli_refuses_a_locked_sweep_with_exit_code_3(prefect_harness, local_storage, tmp_path):
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(tiny_config()))
    _foreign_lock(local_storage, "taken", "other-host:1:abc", 300)
    r = CliRunner().invoke(app, ["run", str(path), "--storage", local_storage.url, "--sweep-id", "taken"])
    assert r.exit_code == 3, r.output
    assert "sweep taken is already running" in r.output and "other-host:1:abc" in r.output
    assert local_storage.ls("sweeps", "taken") == ["lock.json"]  # no config, no trial: no work started


def test_a_local_write_cut_short_by_a_kill_is_never_read(local_storage):
    from gan_tasks.training.trial import Trial, run_trial

    cfg = parse_config(tiny_config(train={"steps": 40, "checkpoint_every": 20, "log_every": 10}))
    trial = expand_grid(cfg)[0]
    ensure_dataset(local_storage, cfg.dataset.name, cfg.dataset.params)
    assert run_trial(trial, local_storage, "cut")["status"] == "completed"
    tid = trial.trial_id
    # What a SIGKILL in the middle of write_bytes leaves behind: the file written aside, never renamed.
    for parts in (("metrics", f".{tid}-000000050.parquet.partial-0badf00d"),
                  ("checkpoints", tid, ".step-000000060.pt.partial-0badf00d")):
        path = local_storage.uri("sweeps", "cut", *parts)
        with open(path, "wb") as f:
            f.write(b"half a file")
    assert not any("partial" in n for n in local_storage.ls("sweeps", "cut", "metrics"))
    # what a user reads: the folder, with the half-written file in it
    assert sorted(pd.read_parquet(local_storage.uri("sweeps", "cut", "metrics")).step) == [10, 20, 30, 40]
    t = Trial(trial, local_storage, "cut")
    assert t.try_resume() and t.step == 40
    t.drop_metrics_after(20)
    steps = local_storage.read_table("sweeps", "cut", "metrics").column("step").to_pylist()
    assert sorted(steps) == [10, 20]
    assert not [n for n in os.listdir(local_storage.uri("sweeps", "cut", "metrics")) if "partial" in n]
