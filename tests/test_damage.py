"""Damage repaired, not propagated (issue 16 item 3): a truncated metrics file, trial row or
evaluation file is named by `gansweep report`, and a re-run of the sweep moves the damaged metrics
and trial files to quarantine/ and regenerates what they held (the final evaluation is simply
rewritten), with the same metric rows as before the damage."""
import pandas as pd
import pytest
from typer.testing import CliRunner

from flows.cli import app
from flows.run.flow import sweep_flow
from tests.conftest import tiny_config

pytestmark = pytest.mark.slow


def _truncate(storage, *parts):
    blob = storage.read_bytes(*parts)
    storage.write_bytes(blob[: len(blob) // 2], *parts)


def test_damaged_files_are_named_quarantined_and_regenerated(ray_session, prefect_harness, local_storage):
    cfg = tiny_config()
    out = sweep_flow(cfg, local_storage.url, "dmg")
    assert out["not_completed"] == 0
    metrics = pd.read_parquet(local_storage.uri("sweeps", "dmg", "metrics"))
    before = metrics.groupby("trial_id").step.apply(list).to_dict()
    a, b = sorted(before)
    m_file = sorted(n for n in local_storage.ls("sweeps", "dmg", "metrics") if n.startswith(a))[0]
    _truncate(local_storage, "sweeps", "dmg", "metrics", m_file)
    _truncate(local_storage, "sweeps", "dmg", "trials", f"{b}.parquet")
    _truncate(local_storage, "sweeps", "dmg", "evaluations", f"{b}.parquet")

    r = CliRunner().invoke(app, ["report", "dmg", "--storage", local_storage.url])
    assert r.exit_code == 2 and "damaged file" in r.output and "Traceback" not in r.output
    assert any(name in r.output.replace("\n", "") for name in (m_file, f"{b}.parquet")), r.output

    out = sweep_flow(cfg, local_storage.url, "dmg")
    assert out["not_completed"] == 0 and out["counts"] == {"completed": 2}
    after = pd.read_parquet(local_storage.uri("sweeps", "dmg", "metrics")).groupby("trial_id").step.apply(list)
    assert after.to_dict() == before, "the same metric rows as the undamaged run, none missing or doubled"
    quarantined = {f: local_storage.ls("sweeps", "dmg", "quarantine", f) for f in ("metrics", "trials", "evaluations")}
    # the final evaluation is rewritten by the re-run's evaluation before anything reads it: nothing to move
    assert quarantined == {"metrics": [m_file], "trials": [f"{b}.parquet"], "evaluations": []}
    assert local_storage.read_parquet("sweeps", "dmg", "evaluations", f"{b}.parquet").num_rows > 0
    assert CliRunner().invoke(app, ["report", "dmg", "--storage", local_storage.url]).exit_code == 0
