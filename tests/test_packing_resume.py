"""A packed group (pack_seeds > 1) resumes like a trial: after a crash from its seeds' newest common
checkpoint, after a preemption notice from the step it checkpointed at, to the same weights as a group that
never stopped; each seed's metric steps logged once, its row counting the starts (`resumed_from`)."""
from __future__ import annotations

import pytest
import torch

from gan_tasks.config import expand_grid, parse_config
from gan_tasks.data.datasets import ensure_dataset
from gan_tasks.training import preempt
from gan_tasks.training.pack_run import run_packed
from gan_tasks.training.trial import Trial
from tests.conftest import tiny_config


def _cell(**train):
    cfg = tiny_config(pack_seeds=2, grid={"loss": ["non-saturating"], "optimizer": ["adam"], "seed": [3, 4]},
                      train={"steps": 40, "batch_size": 64, "log_every": 10, "checkpoint_every": 15, **train})
    return expand_grid(parse_config(cfg))


def _stop_at(step: int, then):
    def on_progress(s: int, steps: int, rate: float) -> None:
        if s >= step:
            then()
    return on_progress


def _crash():
    raise RuntimeError("the process died")


def _weights(storage, sweep_id, c) -> dict:
    t = Trial(c, storage, sweep_id)
    assert t.try_resume() and t.step == c.train.steps
    return {**t.G.state_dict(), **{f"D.{k}": v for k, v in t.D.state_dict().items()}}


def _check(storage, sweep_id, cfgs, resumed_from, preemptions) -> None:
    trials = {r["trial_id"]: r for r in storage.read_table("sweeps", sweep_id, "trials").to_pylist()}
    metrics = storage.read_table("sweeps", sweep_id, "metrics").to_pandas()
    for c in cfgs:
        r = trials[c.trial_id]
        assert (r["status"], r["steps"], r["resumed_from"], r["preemptions"]) == \
            ("completed", 40, resumed_from, preemptions), r
        assert sorted(metrics[metrics.trial_id == c.trial_id].step) == [10, 20, 30, 40]  # each once
        ref, got = _weights(storage, "whole", c), _weights(storage, sweep_id, c)
        assert all(torch.equal(ref[k], got[k]) for k in ref)  # as if it had never stopped


@pytest.fixture
def whole(local_storage):
    cfgs = _cell()
    ensure_dataset(local_storage, cfgs[0].dataset.name, cfgs[0].dataset.params)
    assert {r["status"] for r in run_packed(cfgs, local_storage, "whole")} == {"completed"}
    return cfgs


def test_a_crashed_group_resumes_from_its_newest_common_checkpoint(local_storage, whole):
    rows = run_packed(whole, local_storage, "crash", on_progress=_stop_at(20, _crash))
    assert [(r["status"], r["steps"]) for r in rows] == [("failed", 20)] * 2  # its rows at 20 were flushed
    rows = run_packed(whole, local_storage, "crash")
    _check(local_storage, "crash", whole, [0, 15], 0)


def test_a_preempted_group_checkpoints_at_once_and_resumes_from_that_step(local_storage, whole):
    try:  # the notice as a node's SIGTERM gives it (preempt._on_sigterm), without exiting this process
        rows = run_packed(whole, local_storage, "spot", on_progress=_stop_at(20, preempt._notice.set))
    finally:
        preempt._notice.clear()
    assert [(r["status"], r["steps"], r["preemptions"]) for r in rows] == [("preempted", 20, 1)] * 2
    assert "checkpointed" in rows[0]["error"]
    run_packed(whole, local_storage, "spot")
    _check(local_storage, "spot", whole, [0, 20], 1)


def test_diverged_seeds_are_recorded_at_once_and_not_trained_again(local_storage):
    sgd = {"name": "sgd", "lr_g": 10.0, "lr_d": 10.0}  # the largest lr validation allows: inf by step 3
    cfgs = expand_grid(parse_config(tiny_config(pack_seeds=2, grid={"loss": ["non-saturating"], "optimizer": [sgd],
                                                                    "seed": [3, 4]}, train={"log_every": 1})))
    ensure_dataset(local_storage, cfgs[0].dataset.name, cfgs[0].dataset.params)
    rows = run_packed(cfgs, local_storage, "nan")
    assert {r["status"] for r in rows} == {"diverged"} and all(r["steps"] < 10 for r in rows), rows
    assert all("non-finite" in r["error"] for r in rows)
    again = run_packed(cfgs, local_storage, "nan")  # a re-run: the stored rows, nothing trained
    assert [r["started_at"] for r in again] == [r["started_at"] for r in rows]
    metrics = local_storage.read_table("sweeps", "nan", "metrics").to_pandas()
    for r in rows:  # each seed's rows up to its non-finite one, once
        assert sorted(metrics[metrics.trial_id == r["trial_id"]].step) == list(range(1, r["steps"] + 1))
