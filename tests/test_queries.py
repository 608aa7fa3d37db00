"""The trials' `cell` column and docs/storage.md's pandas/duckdb/polars queries that group by it, over
rows written by trial_row and over older rows that have no cell column (no training needed)."""
import ast
import glob
import re
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest

from gan_tasks.data import schema
from gan_tasks.evaluation import queries
from gan_tasks.config import cell_label, expand_grid, parse_config
from gan_tasks.training.rows import trial_row, write_trial_row
from tests.conftest import tiny_config

QUERIES = (queries.with_pandas, queries.with_duckdb, queries.with_polars)
# One loss, one optimizer name: before the cell column all four cells merged into one group.
SPLIT = {"loss": ["non-saturating"], "optimizer": ["adam", {"name": "adam", "lr_g": 1e-4, "lr_d": 1e-4}],
         "tricks": [{}, {"label_smoothing": 0.1}], "seed": [0, 1]}
SPLIT_CELLS = {"non-saturating/adam", "non-saturating/adam/label_smoothing=0.1",
               "non-saturating/adam(lr 0.0001)", "non-saturating/adam(lr 0.0001)/label_smoothing=0.1"}


def _sweep(grid: dict) -> dict:
    cfg = tiny_config(name="nightly")
    cfg["grid"] = grid
    return cfg


def write_night(st, sweep_id: str, grid: dict, old: bool = False) -> list:
    """Trial rows as the flow writes them (or, old=True, as before the cell column) + one metric each."""
    trials = expand_grid(parse_config(_sweep(grid)))
    now = datetime.now(timezone.utc) - timedelta(hours=1)
    ev = []
    for i, t in enumerate(trials):
        row = trial_row(t, sweep_id, "completed", 60, now, now)
        if old:
            del row["cell"]
            old_schema = schema.TRIALS.remove(schema.TRIALS.get_field_index("cell"))
            st.write_parquet(pa.Table.from_pylist([row], schema=old_schema), "sweeps", sweep_id, "trials",
                             f"{t.trial_id}.parquet")
        else:
            write_trial_row(st, row)
        ev.append({"sweep_id": sweep_id, "trial_id": t.trial_id, "step": 60, "metric": "modes_covered",
                   "value": float(i)})
    st.write_parquet(pa.Table.from_pylist(ev, schema=schema.EVALUATIONS), "sweeps", sweep_id, "evaluations",
                     "e.parquet")
    return trials


def test_cell_is_everything_but_the_seed():
    trials = expand_grid(parse_config(_sweep(SPLIT)))
    by_cell = {}
    for t in trials:
        by_cell.setdefault(t.cell, set()).add(t.seed)
    assert set(by_cell) == SPLIT_CELLS and all(seeds == {0, 1} for seeds in by_cell.values())
    # Settings at their registered defaults for the data (ring-8: points) are not spelt out.
    cells = {"cells": [{"loss": {"name": "non-saturating", "params": {"d_steps": 1}},
                        "optimizer": {"name": "adam", "lr_g": 1e-3, "params": {"betas": [0.5, 0.999]}}},
                       {"loss": {"name": "wgan-gp", "params": {"d_steps": 5, "gp_lambda": 0.1}},
                        "optimizer": {"name": "adam", "lr_g": 1e-4, "lr_d": 1e-4, "params": {"betas": [0.5, 0.9]}}},
                       {"loss": "wgan-gp", "optimizer": {"name": "rmsprop", "lr_g": 1e-4, "lr_d": 4e-4}},
                       {"loss": {"name": "wgan-gp", "params": {"gp_lambda": 10}}, "optimizer": "adam"}],
             "seed": [0]}
    labels = [t.cell for t in expand_grid(parse_config(_sweep(cells)))]
    assert labels == ["non-saturating/adam", "wgan-gp/adam(lr 0.0001, betas 0.5,0.9)",
                      "wgan-gp/rmsprop(lr_g 0.0001, lr_d 0.0004)",
                      "wgan-gp(gp_lambda 10)/adam"]  # an int 10 is another trial id than 10.0: another cell
    # The stored config reads back to the same label.
    t = trials[-1]
    assert cell_label(t.model_dump(mode="json")) == t.cell == "non-saturating/adam(lr 0.0001)/label_smoothing=0.1"


def test_queries_group_by_cell_and_agree(local_storage):
    trials = write_night(local_storage, "nightly-20261122-020000", SPLIT)
    assert len({(t.loss.name, t.optimizer.name) for t in trials}) == 1  # what grouping by loss/optimizer saw
    stored = local_storage.read_table("sweeps", "nightly-20261122-020000", "trials").to_pandas()
    assert set(stored.cell) == SPLIT_CELLS and stored.groupby("cell").seed.nunique().eq(2).all()
    frames = [q(local_storage.url, "nightly") for q in QUERIES]
    for f in frames:
        assert list(f.columns) == ["sweep_id", "cell", "loss", "optimizer", "mean", "seeds"]
        assert set(f.cell) == SPLIT_CELLS and (f.seeds == 2).all() and set(f.optimizer) == {"adam"}
    for f in frames[1:]:
        pd.testing.assert_frame_equal(frames[0], f, check_dtype=False)
    # Seeds 0 and 1 of a cell are consecutive trials: values 2k and 2k+1, mean 2k + 0.5.
    means = frames[0].set_index("cell")["mean"]
    assert means["non-saturating/adam"] == 0.5 and means["non-saturating/adam(lr 0.0001)/label_smoothing=0.1"] == 6.5


@pytest.mark.parametrize("with_new_night", [True, False])
def test_rows_without_a_cell_column_fall_back_to_loss_and_optimizer(local_storage, with_new_night):
    write_night(local_storage, "nightly-20261121-020000",
                {"loss": ["non-saturating", "lsgan-011"], "optimizer": ["adam"], "seed": [0, 1]}, old=True)
    if with_new_night:  # a week that spans the upgrade: files with and without the column
        write_night(local_storage, "nightly-20261122-020000", SPLIT)
    frames = [q(local_storage.url, "nightly") for q in QUERIES]
    for f in frames[1:]:
        pd.testing.assert_frame_equal(frames[0], f, check_dtype=False)
    old = frames[0][frames[0].sweep_id == "nightly-20261121-020000"]
    assert list(old.cell) == ["lsgan-011/adam", "non-saturating/adam"] and (old.seeds == 2).all()
    assert len(frames[0]) == 2 + 4 * with_new_night


def _recipes() -> dict:
    """docs/storage.md's three query blocks, by the comment that opens each: pandas, duckdb, polars."""
    text = (Path(__file__).resolve().parents[1] / "docs/storage.md").read_text()
    blocks = re.findall(r"```(?:python|sql)\n(.*?)```", text, re.S)
    return {b.split("\n", 1)[0].lstrip("#- ").strip(): b for b in blocks if b.startswith(("# ", "-- "))}


def _run_python(code: str, env: dict) -> pd.DataFrame:
    tree = ast.parse(code)
    *body, last = tree.body
    exec(compile(ast.Module(body, []), "docs/storage.md", "exec"), env)
    return eval(compile(ast.Expression(last.value), "docs/storage.md", "eval"), env)


def test_the_docs_recipes_as_written_agree_with_queries_py(local_storage):
    import duckdb
    import polars as pl

    write_night(local_storage, "nightly-20261121-020000",
                {"loss": ["non-saturating", "lsgan-011"], "optimizer": ["adam"], "seed": [0, 1]}, old=True)
    trials = write_night(local_storage, "nightly-20261122-020000", SPLIT)
    # an evaluation during training, where sweeps written before eval_every/ kept it: not a seed's result
    mid = [{"sweep_id": "nightly-20261122-020000", "trial_id": t.trial_id, "step": 30, "metric": "modes_covered",
            "value": 100.0} for t in trials]
    local_storage.write_parquet(pa.Table.from_pylist(mid, schema=schema.EVALUATIONS), "sweeps",
                                "nightly-20261122-020000", "evaluations", "mid.parquet")
    root = local_storage.url.rstrip("/")
    recipes = _recipes()
    assert set(recipes) == {"pandas", "duckdb", "polars"}, recipes.keys()
    since = datetime.now(timezone.utc) - timedelta(days=7)
    got = [_run_python(recipes["pandas"], {"pd": pd, "glob": glob, "root": root}),
           duckdb.connect().execute(recipes["duckdb"].replace("ROOT", root)).df(),
           _run_python(recipes["polars"], {"pl": pl, "root": root, "since": since,
                                           "TRIALS": schema.TRIALS}).to_pandas()]
    want = queries.with_pandas(root, "nightly")
    assert len(want) == 6
    for f in got:
        pd.testing.assert_frame_equal(f.reset_index(drop=True), want, check_dtype=False)
