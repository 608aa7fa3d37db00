"""CycleGAN through the real flow: mnist-thick uploaded to a moto S3 endpoint, a tiny loss x seed grid
trained and evaluated in Ray actors under Prefect, per-direction metrics, rankings and the report's
grids; and a trial whose actor is SIGKILLed mid-run resumes to a bit-identical result."""
import io
import os
import signal
import time

import numpy as np
import pandas as pd
import pytest
import ray
import torch
from typer.testing import CliRunner

from flows.actors.trial_actor import make_actor
from flows.cli import app
from flows.run.flow import sweep_flow
from gan_tasks.config import expand_grid, parse_config
from tests.conftest import DATA
from tests.evalkit import copy_classifier, mnist_store

pytestmark = pytest.mark.slow

CFG = {"name": "cycle-tiny", "program": "cyclegan", "dataset": "mnist-thick",
       "model": {"name": "cyclegan-resnet", "params": {"width": 4, "blocks": 1, "d_width": 4}},
       "grid": {"loss": ["lsgan", "non-saturating"], "optimizer": ["adam"], "seed": [0]},
       "train": {"steps": 8, "batch_size": 4, "log_every": 2, "checkpoint_every": 4},
       "evaluation": {"fidelity_samples": 200}}


def test_cyclegan_grid_trains_evaluates_and_reports(ray_session, prefect_harness, s3_storage):
    st, meta = mnist_store()
    ep = s3_storage.endpoint_url
    res = CliRunner().invoke(app, ["data", "upload", "mnist-thick", str(DATA / "mnist"), "--storage",
                                   s3_storage.url, "--s3-endpoint-url", ep])
    assert res.exit_code == 0 and "train_a: (30000, 1, 28, 28)" in res.output, res.output
    copy_classifier(st, s3_storage)
    out = sweep_flow(CFG, s3_storage.url, "cg-1", None, ep)
    assert out["not_completed"] == 0 and out["counts"] == {"completed": 2}

    opts = {"storage_options": s3_storage.storage_options}
    base = s3_storage.uri("sweeps", "cg-1")
    m = pd.read_parquet(f"{base}/metrics/", **opts)
    assert sorted(m.step.unique()) == [2, 4, 6, 8] and m.cycle.gt(0).all() and m.identity.gt(0).all()
    assert m.grad_norm_g.gt(0).all() and m.wasserstein.isna().all()
    ev = pd.read_parquet(f"{base}/evaluations/", **opts)
    v = ev.set_index(["trial_id", "metric"]).value
    for tid in ev.trial_id.unique():
        got = v.loc[tid]
        for d in ("a2b", "b2a"):
            assert 0 < got[f"{d}_gt_l1"] < 1 and 0 <= got[f"{d}_label_acc"] <= 1 and got[f"{d}_fid"] > 0
            assert got[f"{d}_label_acc_real"] > 0.9 and got[f"{d}_gt_l1_identity"] > 0.05
    assert (ev.extractor_hash == meta["hash"]).all()
    ranks = pd.read_parquet(f"{base}/rankings/", **opts)
    assert {"a2b_gt_l1", "b2a_label_acc", "a2b_fid"} <= set(ranks.metric)
    assert not ranks.metric.str.endswith("_untrained").any()  # baselines are stored, not ranked
    grid = np.load(io.BytesIO(s3_storage.read_bytes("sweeps", "cg-1", "samples", f"{ev.trial_id.iloc[0]}.npy")))
    assert grid.shape == (48, 1, 28, 28)  # rows a, G(a), F(G(a)), b, F(b), G(F(b)) of 8 (sample_columns)
    assert "data:image/png;base64" in s3_storage.read_bytes("sweeps", "cg-1", "report", "index.html").decode()


def _last(storage, sweep_id, tid) -> dict:
    names = [n for n in storage.ls("sweeps", sweep_id, "checkpoints", tid) if n.endswith(".pt")]
    return torch.load(io.BytesIO(storage.read_bytes("sweeps", sweep_id, "checkpoints", tid, names[-1])),
                      weights_only=True)


def test_cyclegan_trial_killed_mid_run_resumes_bit_identically(ray_session, local_storage):
    from gan_tasks.data.images import upload

    upload(local_storage, "mnist-thick", str(DATA / "mnist"))
    cfg = {**CFG, "grid": {"loss": ["lsgan"], "optimizer": ["adam"], "seed": [0]},
           "model": {"name": "cyclegan-resnet", "params": {**CFG["model"]["params"], "pool": 6}},  # full in 2 steps
           "train": {"steps": 120, "batch_size": 4, "log_every": 5, "checkpoint_every": 40, "g_ema": 0.9}}
    (trial,) = expand_grid(parse_config(cfg))
    actor = make_actor(0, 1)
    assert ray.get(actor.train.remote(trial, local_storage, "ref"))["status"] == "completed"
    ref = actor.train.remote(trial, local_storage, "cut")
    pid = ray.get(actor.pid.remote())
    while ray.get(actor.progress.remote())[0] < 90:  # past its checkpoints at 40 and 80
        time.sleep(0.01)
    os.kill(pid, signal.SIGKILL)  # Ray restarts the actor and retries the call: it resumes at step 80
    killed = pd.Timestamp.now(tz="UTC")
    row = ray.get(ref)
    assert row["status"] == "completed" and ray.get(actor.pid.remote()) != pid
    assert row["started_at"] > killed  # the row is the retried call's: the kill did interrupt training
    a, b = _last(local_storage, "ref", trial.trial_id), _last(local_storage, "cut", trial.trial_id)
    assert a["step"] == b["step"] == 120
    for net in ("G", "F", "D_A", "D_B", "G_ema", "F_ema"):
        for name, tensor in a[net].items():
            assert torch.equal(tensor, b[net][name]), f"{net}.{name} differs after resume"
    for pool in ("pool_a", "pool_b"):
        assert torch.equal(a["pools"][pool]["images"], b["pools"][pool]["images"])
    cols = ["step", "loss_d", "loss_g", "grad_norm_d", "grad_norm_g", "cycle", "identity"]
    ma, mb = (pd.read_parquet(local_storage.uri("sweeps", s, "metrics")).sort_values("step").reset_index(drop=True)
              for s in ("ref", "cut"))
    assert list(mb.step) == list(range(5, 121, 5))  # no gaps, no duplicates
    pd.testing.assert_frame_equal(ma[cols], mb[cols])
    ray.kill(actor)
