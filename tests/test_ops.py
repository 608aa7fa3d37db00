"""Night over night: two sweeps of one config, docs/storage.md's pandas/duckdb/polars queries, compare."""
import pandas as pd
import pytest
from typer.testing import CliRunner

from flows.cli import app
from flows.run.flow import sweep_flow
from gan_tasks.evaluation import queries
from tests.conftest import tiny_config

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def two_nights(ray_session, prefect_harness, tmp_path_factory):
    from gan_tasks.data.storage import Storage

    st = Storage.parse(str(tmp_path_factory.mktemp("nights")))
    cfg = tiny_config(name="nightly", grid={"loss": ["non-saturating", "lsgan-011"], "optimizer": ["adam"],
                                            "seed": [0, 1]})
    first = sweep_flow(cfg, st.url, "nightly-20261121-020000")
    second = sweep_flow(cfg, st.url, "nightly-20261122-020000", fail_on_regression=False)
    return st, first, second


def test_the_three_queries_agree_over_both_nights(two_nights):
    st, _, _ = two_nights
    frames = [q(st.url, "nightly") for q in (queries.with_pandas, queries.with_duckdb, queries.with_polars)]
    for f in frames:
        print(f.to_string())
        assert set(f.sweep_id) == {"nightly-20261121-020000", "nightly-20261122-020000"}
        assert len(f) == 4 and (f.seeds == 2).all()
    for f in frames[1:]:
        pd.testing.assert_frame_equal(frames[0], f, check_dtype=False)


def test_second_night_compares_itself_with_the_first(two_nights):
    st, first, second = two_nights
    assert first["previous"] is None
    assert second["previous"] == "nightly-20261121-020000"
    cmp = pd.read_parquet(st.uri("sweeps", "nightly-20261122-020000", "comparison"))
    # Same config, same seeds, deterministic training: the second night reproduces the first.
    assert len(cmp) >= 6 and (cmp.delta.abs() < 1e-9).all() and not cmp.flagged.any()
    r = CliRunner().invoke(app, ["compare", "nightly-20261121-020000", "nightly-20261122-020000",
                                 "--storage", st.url], env={"COLUMNS": "200"})
    assert r.exit_code == 0, r.output
    assert "modes_covered" in r.output and "0 regression(s)" in r.output
