"""Seed-packing: packed seeds equal unpacked train.Trial runs; each seed keeps its own rows and checkpoints."""
from __future__ import annotations

import pytest
import torch

from gan_tasks.config import ConfigError, expand_grid, parse_config
from gan_tasks.data.datasets import ensure_dataset
from gan_tasks.training.pack_run import run_packed
from gan_tasks.training.packing import PackedTrials
from gan_tasks.training.trial import Trial
from tests.conftest import tiny_config


def _cell(loss: str, seeds: list[int], steps: int = 30):
    cfg = tiny_config(grid={"loss": [loss], "optimizer": ["adam"], "seed": seeds},
                      train={"steps": steps, "batch_size": 64, "log_every": 10, "checkpoint_every": 15})
    return expand_grid(parse_config(cfg))


@pytest.mark.parametrize("loss", ["non-saturating", "lsgan-011"])
def test_packed_seeds_equal_unpacked_trials(local_storage, loss):
    cfgs = _cell(loss, [0, 1, 2])
    ensure_dataset(local_storage, cfgs[0].dataset.name, cfgs[0].dataset.params)
    packed = PackedTrials(cfgs, local_storage, "p")
    packed.run()
    for i, c in enumerate(cfgs):
        t = Trial(c, local_storage, "u")
        t.run()
        ref = t.G.state_dict()
        got = packed.G.seed_state(i)
        assert set(ref) == set(got)
        for k in ref:  # bmm vs mm rounding only; different seeds differ by O(1)
            torch.testing.assert_close(got[k], ref[k], atol=1e-4, rtol=1e-4)
    first = [next(iter(packed.G.seed_state(i).values())) for i in (0, 1)]
    assert not torch.allclose(*first)  # the seeds really are different models


def test_each_seed_gets_rows_checkpoints_and_resumes_as_a_trial(local_storage):
    cfgs = _cell("non-saturating", [3, 4], steps=30)
    ensure_dataset(local_storage, cfgs[0].dataset.name, cfgs[0].dataset.params)
    rows = run_packed(cfgs, local_storage, "s")
    assert [r["status"] for r in rows] == ["completed", "completed"]
    trials = local_storage.read_table("sweeps", "s", "trials").to_pylist()
    assert {r["trial_id"] for r in trials} == {c.trial_id for c in cfgs}
    metrics = local_storage.read_table("sweeps", "s", "metrics").to_pandas()
    for c in cfgs:
        assert sorted(metrics[metrics.trial_id == c.trial_id].step) == [10, 20, 30]
        # An ordinary Trial resumes from the packed checkpoint (what evaluation does).
        t = Trial(c, local_storage, "s")
        assert t.try_resume() and t.step == 30


def test_unpackable_losses_and_models_are_refused():
    parse_config(tiny_config(grid={"loss": ["wgan-gp"], "optimizer": ["adam"], "seed": [0]}))  # off: anything goes
    with pytest.raises(ConfigError, match="wgan-gp.*packable losses: .*non-saturating"):
        parse_config(tiny_config(pack_seeds=2, grid={"loss": ["non-saturating", "wgan-gp"], "optimizer": ["adam"],
                                                     "seed": [0, 1]}))
    with pytest.raises(ConfigError, match="pack_seeds"):
        parse_config(tiny_config(pack_seeds=0))


@pytest.mark.slow
def test_flow_packs_seeds_into_one_actor_call(ray_session, prefect_harness, s3_storage):
    from flows.run.flow import sweep_flow

    raw = tiny_config(pack_seeds=2, grid={"loss": ["non-saturating"], "optimizer": ["adam"], "seed": [0, 1, 2]},
                      train={"steps": 20, "batch_size": 64, "log_every": 10, "checkpoint_every": 10})
    out = sweep_flow(raw, s3_storage.url, "packed", None, s3_storage.endpoint_url)
    ids = {t.trial_id for t in expand_grid(parse_config({**raw, "pack_seeds": 1}))}  # packing keeps trial ids
    trials = s3_storage.read_table("sweeps", "packed", "trials").to_pylist()
    assert {r["trial_id"] for r in trials} == ids and {r["status"] for r in trials} == {"completed"}
    evals = s3_storage.read_table("sweeps", "packed", "evaluations").to_pandas()
    assert set(evals.trial_id) == ids  # every packed seed evaluated from its own checkpoint
    assert out["not_completed"] == 0
