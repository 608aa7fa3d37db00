"""An evaluation that fails is a failed trial: in its row, the flow's state and the exit code, and a
re-run evaluates it again once the cause is gone (issue 16: failures tell the truth)."""
import pandas as pd
import pytest

from flows.run.flow import sweep_flow
from gan_tasks.data.images import upload
from tests.conftest import DATA
from tests.evalkit import copy_classifier, mnist_store

pytestmark = pytest.mark.slow

CFG = {"name": "evalfail", "dataset": "mnist", "model": "dcgan-28",
       "grid": {"loss": ["non-saturating"], "optimizer": ["adam"], "seed": [0]},
       "train": {"steps": 2, "batch_size": 8, "z_dim": 8, "log_every": 1, "checkpoint_every": 2},
       "evaluation": {"fidelity_samples": 200}}


def test_a_failed_evaluation_fails_the_trial_and_a_rerun_repairs_it(ray_session, prefect_harness, local_storage):
    upload(local_storage, "mnist", str(DATA / "mnist"))  # no classifier trained: image metrics cannot run
    state = sweep_flow(CFG, local_storage.url, "ef", return_state=True)
    assert state.is_failed() and "1 of 1 trials did not complete" in state.message
    row = pd.read_parquet(local_storage.uri("sweeps", "ef", "trials")).iloc[0]
    assert row.status == "failed" and row.error.startswith("evaluation failed:") and "classifier" in row.error
    assert row.steps == 2, "the training itself is kept"

    st, _ = mnist_store()
    copy_classifier(st, local_storage)  # the cause is gone: the same sweep id evaluates it again
    out = sweep_flow(CFG, local_storage.url, "ef")
    assert out["not_completed"] == 0 and out["counts"] == {"completed": 1}
    ev = pd.read_parquet(local_storage.uri("sweeps", "ef", "evaluations"))
    assert {"fid", "inception_score"} <= set(ev.metric)
