"""The walking skeleton end to end: real Prefect flow, real Ray actors, a real S3 endpoint over HTTP."""
import pandas as pd
import pytest

from flows.run.flow import sweep_flow
from gan_tasks.data import schema
from gan_tasks.config import expand_grid, parse_config
from tests.conftest import tiny_config

pytestmark = pytest.mark.slow


def test_tiny_sweep_on_s3_reads_back_with_pandas(ray_session, prefect_harness, s3_storage):
    cfg = tiny_config()
    out = sweep_flow(cfg, s3_storage.url, "e2e-1", None, s3_storage.endpoint_url)
    assert out["not_completed"] == 0 and out["counts"] == {"completed": 2}

    trials_ids = {t.trial_id for t in expand_grid(parse_config(cfg))}
    opts = {"storage_options": s3_storage.storage_options}
    base = s3_storage.uri("sweeps", "e2e-1")
    assert base.startswith("s3://")

    trials = pd.read_parquet(f"{base}/trials/", **opts)
    assert set(trials.trial_id) == trials_ids
    assert list(trials.columns) == schema.TRIALS.names
    assert (trials.status == "completed").all() and (trials.steps == 60).all()

    metrics = pd.read_parquet(f"{base}/metrics/", **opts)
    assert list(metrics.columns) == schema.METRICS.names
    for tid, g in metrics.groupby("trial_id"):
        assert sorted(g.step) == list(range(10, 61, 10))  # every logged step exactly once
    assert metrics[["loss_d", "loss_g"]].notna().all().all()

    ev = pd.read_parquet(f"{base}/evaluations/", **opts)
    assert {"modes_covered", "high_quality", "reverse_kl"} <= set(ev.metric)
    assert ev[ev.metric == "modes_covered"].value.between(0, 8).all()

    # Outputs next to the data: resolved config, checkpoints with their trial config, report.
    assert s3_storage.read_bytes("sweeps", "e2e-1", "config.yaml").startswith(b"name: tiny")
    for tid in trials_ids:
        assert any(n.endswith(".pt") for n in s3_storage.ls("sweeps", "e2e-1", "checkpoints", tid))
        assert s3_storage.exists("sweeps", "e2e-1", "checkpoints", tid, "config.json")
    html = s3_storage.read_bytes("sweeps", "e2e-1", "report", "index.html").decode()
    assert html.count("data:image/png;base64,") >= 3  # curves + one scatter per trial
    assert "non-saturating" in html and "lsgan-011" in html
    # The dataset was written once to storage, where the actors read it from.
    assert s3_storage.ls("datasets", "ring-8")

