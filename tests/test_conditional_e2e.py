"""A conditional program end to end (real Prefect flow, real Ray actors, S3 over HTTP), an MNIST evaluation
of its class metrics, and kill -9 resume bit-identical as for the unconditional GAN."""
import io
import json
import time

import numpy as np
import pandas as pd
import pytest
import ray
import torch

from flows.actors.trial_actor import make_actor
from flows.run.flow import sweep_flow
from gan_tasks.config import EvalConfig, expand_grid, parse_config
from gan_tasks.data.datasets import ensure_dataset
from gan_tasks.data.userdata import upload_id
from gan_tasks.evaluation.evaluate import evaluate_trial
from gan_tasks.training.trial import run_trial
from tests.conftest import tiny_config
from tests.evalkit import copy_classifier, copy_dataset, mnist_store

pytestmark = pytest.mark.slow


def test_tiny_conditional_sweep_on_s3(ray_session, prefect_harness, s3_storage):
    cfg = tiny_config(program="cgan-projection")
    out = sweep_flow(cfg, s3_storage.url, "cond-1", None, s3_storage.endpoint_url)
    assert out["not_completed"] == 0 and out["counts"] == {"completed": 2}
    opts = {"storage_options": s3_storage.storage_options}
    base = s3_storage.uri("sweeps", "cond-1")
    trials = pd.read_parquet(f"{base}/trials/", **opts)
    assert set(trials.cell) == {"cgan-projection/non-saturating/adam", "cgan-projection/lsgan-011/adam"}
    ev = pd.read_parquet(f"{base}/evaluations/", **opts)
    # the program's metrics beside the dataset's
    assert {"modes_covered", "high_quality", "class_mode_accuracy", "class_mode_accuracy_min"} <= set(ev.metric)
    assert ev[ev.metric == "class_mode_accuracy"].value.between(0, 1).all()
    rankings = pd.read_parquet(f"{base}/rankings/", **opts)
    assert "class_mode_accuracy" in set(rankings.metric)
    html = s3_storage.read_bytes("sweeps", "cond-1", "report", "index.html").decode()
    assert "class_mode_accuracy" in html


def test_conditional_mnist_class_metrics_and_a_row_per_class(local_storage):
    src, _ = mnist_store()
    copy_dataset(src, local_storage)
    copy_classifier(src, local_storage)
    small = tiny_config(dataset="mnist", model="dcgan-28", program="acgan",
                        grid={"loss": ["non-saturating"], "optimizer": ["adam"], "seed": [0]},
                        train={"steps": 4, "batch_size": 16, "log_every": 2, "checkpoint_every": 2},
                        evaluation={"fidelity_samples": 200})
    with pytest.raises(ValueError, match="intra-class FID would get 20 samples a class"):
        parse_config(small)  # 20 a class: FID refused, KID only (below) is cheap and fine
    cfg = parse_config({**small, "evaluation": {"fidelity_samples": 200, "image_metrics": ["isc", "kid", "prc"]}})
    t = expand_grid(cfg)[0]
    assert run_trial(t, local_storage, "m")["status"] == "completed"
    full = {r["metric"]: r for r in evaluate_trial(t, local_storage, "m", cfg.evaluation)}
    rows = {m: r["value"] for m, r in full.items()}
    assert {"class_accuracy", "intra_kid", "kid", "inception_score"} <= set(rows)
    assert not {"fid", "intra_fid"} & set(rows)
    assert 0 <= rows["class_accuracy"] <= 1 and np.isfinite(rows["intra_kid"])
    intra = json.loads(full["intra_kid"]["provenance"])  # 20 a class, a seeded subset of the class's images
    assert (intra["n_real"], intra["reference_split"]) == (20, "train (per class)")
    assert intra["dataset_id"] == upload_id(local_storage, "mnist")
    assert json.loads(full["kid"]["provenance"])["n_real"] == 200 and full["class_accuracy"]["provenance"] == ""
    s = np.load(io.BytesIO(local_storage.read_bytes("sweeps", "m", "samples", f"{t.trial_id}.npy")))
    assert s.shape == (80, 1, 28, 28)  # 10 classes x 8: one report row per class


def _last_checkpoint(storage, sweep_id, tid) -> dict:
    names = [n for n in storage.ls("sweeps", sweep_id, "checkpoints", tid) if n.endswith(".pt")]
    return torch.load(io.BytesIO(storage.read_bytes("sweeps", sweep_id, "checkpoints", tid, names[-1])),
                      weights_only=True)


@pytest.mark.parametrize("program", ["cgan-concat", "cgan-projection", "acgan"])
def test_kill_9_resume_is_bit_identical(ray_session, local_storage, program):
    cfg = tiny_config(program=program, grid={"loss": ["wgan-gp"], "optimizer": ["adam"], "seed": [3]},
                      train={"steps": 200, "checkpoint_every": 50, "log_every": 10})
    sweep = parse_config(cfg)
    (trial,) = expand_grid(sweep)
    ensure_dataset(local_storage, sweep.dataset.name, sweep.dataset.params)
    ref_actor = make_actor(0, 1)
    assert ray.get(ref_actor.train.remote(trial, local_storage, "ref"))["status"] == "completed"
    ray.kill(ref_actor, no_restart=True)

    actor = make_actor(0, 1)
    running = actor.train.remote(trial, local_storage, "cut")
    while ray.get(actor.progress.remote())[:2] < (120, 200):  # past the checkpoints at 50 and 100
        time.sleep(0.01)
    ray.kill(actor, no_restart=True)  # SIGKILL
    with pytest.raises(ray.exceptions.RayActorError):
        ray.get(running)
    again = make_actor(0, 1)
    assert ray.get(again.train.remote(trial, local_storage, "cut"))["status"] == "completed"
    ray.kill(again, no_restart=True)

    a, b = _last_checkpoint(local_storage, "ref", trial.trial_id), _last_checkpoint(local_storage, "cut", trial.trial_id)
    assert a["step"] == b["step"] == 200
    for net in ("G", "D", "G_ema"):
        for name, tensor in a[net].items():
            assert torch.equal(tensor, b[net][name]), f"{net}.{name} differs after resume"
    m = {s: pd.read_parquet(local_storage.uri("sweeps", s, "metrics")).sort_values("step").reset_index(drop=True)
         for s in ("ref", "cut")}
    cols = ["step", "loss_d", "loss_g", "grad_norm_d", "grad_norm_g", "penalty"]
    pd.testing.assert_frame_equal(m["ref"][cols], m["cut"][cols])
    ev = EvalConfig(n_samples=800)
    ra = evaluate_trial(trial, local_storage, "ref", ev)
    rb = evaluate_trial(trial, local_storage, "cut", ev)
    # NaN (an undefined metric, e.g. reverse_kl_hq with no high-quality sample) equals NaN here
    np.testing.assert_equal([(r["metric"], r["value"]) for r in ra], [(r["metric"], r["value"]) for r in rb])
