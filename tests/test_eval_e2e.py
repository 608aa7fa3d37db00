"""Fan-in evaluation end to end: MNIST uploaded to a moto S3 endpoint, a tiny dcgan-28 grid trained
and evaluated in Ray actors under Prefect, image metrics with the MNIST classifier, rankings, report."""
import json
import pandas as pd
import pytest
from typer.testing import CliRunner

from flows.cli import app
from flows.run.flow import sweep_flow
from gan_tasks.data import schema
from tests.conftest import DATA
from tests.evalkit import copy_classifier, mnist_store

pytestmark = pytest.mark.slow

CFG = {"name": "mnist-tiny", "dataset": "mnist", "model": "dcgan-28",
       "grid": {"loss": ["non-saturating", "wgan"], "optimizer": ["adam"], "seed": [0, 1]},
       "train": {"steps": 12, "batch_size": 16, "z_dim": 16, "log_every": 4, "checkpoint_every": 6},
       "evaluation": {"fidelity_samples": 400, "eval_every": 6, "eval_every_samples": 200}}


def cli(*args, endpoint: str):
    res = CliRunner().invoke(app, [*args, "--s3-endpoint-url", endpoint])
    assert res.exit_code == 0, res.output
    return res.output


def test_mnist_grid_produces_metrics_rankings_and_report(ray_session, prefect_harness, s3_storage):
    st, meta = mnist_store()
    ep = s3_storage.endpoint_url
    assert "uploaded mnist" in cli("data", "upload", "mnist", str(DATA / "mnist"), "--storage", s3_storage.url,
                                   endpoint=ep)
    copy_classifier(st, s3_storage)  # the classifier `gansweep evaluator train mnist` stores
    out = sweep_flow(CFG, s3_storage.url, "ev-1", None, ep)
    assert out["not_completed"] == 0 and out["counts"] == {"completed": 4}

    opts = {"storage_options": s3_storage.storage_options}
    base = s3_storage.uri("sweeps", "ev-1")
    final = pd.read_parquet(f"{base}/evaluations/", **opts)
    during = pd.read_parquet(f"{base}/eval_every/", **opts)
    assert list(final.columns) == list(during.columns) == schema.EVALUATIONS.names
    # eval_every 6 during training, in a folder of its own: evaluations/ holds one result per trial, at 12
    assert set(final.step) == {12} and set(during.step) == {6}
    ev = pd.concat([final, during])
    assert ev.trial_id.nunique() == 4
    for tid, g in ev[ev.step == 12].groupby("trial_id"):
        assert {"inception_score", "fid", "kid", "precision", "recall"} <= set(g.metric), tid
    assert (ev.extractor == "classifier").all() and (ev.extractor_hash == meta["hash"]).all()
    v = ev.set_index(["trial_id", "metric"]).value
    assert v.xs("inception_score", level=1).between(1, 10).all() and (v.xs("fid", level=1) > 0).all()
    assert v.xs("precision", level=1).between(0, 1).all()

    assert set(ev[ev.step == 6].metric) >= {"fid", "inception_score"}  # the cheap small-sample version
    # Real-data features: computed once per provenance (400 samples final, 200 during training) for the
    # sweep's 4 trials and 8 evaluations, and cached in storage under their provenance's hash.
    stats = s3_storage.ls("evaluators", "stats")
    assert len({n.split("-gansweep-classifier-")[0] for n in stats}) == 2
    n_real = {step: {json.loads(p)["n_real"] for p in g.provenance} for step, g in ev[ev.metric == "fid"].groupby("step")}
    assert n_real == {12: {400}, 6: {200}}

    ranks = pd.read_parquet(f"{base}/rankings/", **opts)
    assert list(ranks.columns) == schema.RANKINGS.names
    fid = ranks[ranks.metric == "fid"]
    assert set(zip(fid.loss, fid.optimizer)) == {("non-saturating", "adam"), ("wgan", "adam")}
    assert (fid.seeds == 2).all() and sorted(fid["rank"]) == [1, 2] and fid.ci95_high.gt(fid.ci95_low).all()

    html = s3_storage.read_bytes("sweeps", "ev-1", "report", "index.html").decode()
    assert html.count("data:image/png;base64,") >= 1 + 4  # training curves + one image grid per trial
    assert "Rankings over seeds" in html and "Welch" in html and meta["hash"] in html
    assert "inception_score" in html and "class=\"dataframe sortable\"" in html
    assert "Quality over training steps" in html

    # `gansweep report` regenerates it from storage alone.
    s3_storage.rm("sweeps", "ev-1", "report", "index.html")
    assert "index.html" in cli("report", "ev-1", "--storage", s3_storage.url, endpoint=ep)
    assert "Rankings over seeds" in s3_storage.read_bytes("sweeps", "ev-1", "report", "index.html").decode()
