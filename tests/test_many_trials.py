"""The faster paths of issue 15 lose nothing: trials evaluated in their actor, actors reused across
trials, fewer task-runner threads, a no-op re-run decided from storage. Every trial is still a
Prefect task run, every metric row is there (counts from steps / log_every), and a finished sweep's
re-run verifies its files before it skips the flow."""
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from flows.cli import app
from flows.guard.finished import finished
from flows.run.flow import sweep_flow
from gan_tasks.config import expand_grid, parse_config
from tests.conftest import tiny_config

pytestmark = pytest.mark.slow

# 6 trials on 2 slots: each pooled actor trains three, one after another. 55 steps, a row every 10
# and one at the last step: 10, 20, 30, 40, 50, 55.
CFG = tiny_config(grid={"seed": [0, 1, 2]}, train={"steps": 55, "log_every": 10, "checkpoint_every": 20})


def expected_steps(steps: int, log_every: int) -> list[int]:
    return sorted({*range(log_every, steps + 1, log_every), steps})


def test_every_trial_a_task_run_every_row_kept_and_a_verified_noop_rerun(ray_session, prefect_harness,
                                                                         local_storage, tmp_path):
    from prefect import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    state = sweep_flow(CFG, local_storage.url, "many", return_state=True)
    out = state.result()
    assert out["not_completed"] == 0 and out["counts"] == {"completed": 6}
    trials = expand_grid(parse_config(CFG))
    with get_client(sync_client=True) as client:
        flow_run = FlowRunFilter(id=FlowRunFilterId(any_=[state.state_details.flow_run_id]))
        runs = client.read_task_runs(flow_run_filter=flow_run)
    names = [r.name for r in runs]
    assert sorted(n for n in names if n.endswith("]") and not n.startswith("evaluate")) == \
        sorted(f"{t.label} [{t.trial_id}]" for t in trials), "one visible task run per trial"
    assert not [n for n in names if n.startswith("evaluate")], "evaluated in their actors: no second task run"

    metrics = pd.read_parquet(local_storage.uri("sweeps", "many", "metrics"))
    steps = metrics.groupby("trial_id").step.apply(sorted).to_dict()
    assert steps == {t.trial_id: expected_steps(55, 10) for t in trials}, "no metric row lost or doubled"
    ev = pd.read_parquet(local_storage.uri("sweeps", "many", "evaluations"))
    assert set(ev.trial_id) == {t.trial_id for t in trials}

    sweep = parse_config(CFG)
    assert finished(local_storage, sweep, "many") == {
        "counts": {"completed": 6}, "report": local_storage.uri("sweeps", "many", "report", "index.html"),
        "rebuilt": False}
    (tmp_path / "many.yaml").write_text(yaml.safe_dump(CFG))
    r = CliRunner().invoke(app, ["run", str(tmp_path / "many.yaml"), "--storage", local_storage.url,
                                 "--sweep-id", "many"])
    assert r.exit_code == 0 and "already finished" in r.output and "report up to date" in r.output, r.output

    local_storage.rm("sweeps", "many", "report", "index.html")  # a missing report is rebuilt, nothing retrained
    assert finished(local_storage, sweep, "many")["rebuilt"]
    assert local_storage.exists("sweeps", "many", "report", "index.html")

    # A damaged final evaluation: not finished; the flow moves it aside and evaluates that trial again.
    t = trials[0].trial_id
    blob = local_storage.read_bytes("sweeps", "many", "evaluations", f"{t}.parquet")
    local_storage.write_bytes(blob[: len(blob) // 2], "sweeps", "many", "evaluations", f"{t}.parquet")
    assert finished(local_storage, sweep, "many") is None
    out = sweep_flow(CFG, local_storage.url, "many")
    assert out["not_completed"] == 0
    assert local_storage.ls("sweeps", "many", "quarantine", "evaluations") == [f"{t}.parquet"]
    assert local_storage.read_parquet("sweeps", "many", "evaluations", f"{t}.parquet").num_rows > 0
    after = pd.read_parquet(local_storage.uri("sweeps", "many", "metrics")).groupby("trial_id").step.apply(sorted)
    assert after.to_dict() == steps, "the re-run retrained nothing"
    assert finished(local_storage, sweep, "many") is not None


def test_task_runs_are_created_as_threads_free_up_not_all_at_once(ray_session, prefect_harness, local_storage):
    """A sweep's trials wait in the flow's bounded runner (2 threads a slot + 2), not each in a thread of
    its own: before the first trial ends, at most that many trial task runs exist in the API (all 16 were,
    with a thread per submitted task), and every trial still completes as its own task run."""
    from prefect import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    from flows.actors.pool import slots

    cfg = tiny_config(grid={"seed": list(range(8))}, train={"steps": 5, "log_every": 5, "checkpoint_every": 5})
    state = sweep_flow(cfg, local_storage.url, "bounded", return_state=True)
    assert state.result()["counts"] == {"completed": 16}
    with get_client(sync_client=True) as client:
        runs = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(
            any_=[state.state_details.flow_run_id])))
    trial_runs = [r for r in runs if r.name.endswith("]")]
    assert len(trial_runs) == 16
    first_end = min(r.end_time for r in trial_runs)
    threads = 2 * slots(0, 1, 16) + 2
    assert sum(r.created < first_end for r in trial_runs) <= threads < 16
