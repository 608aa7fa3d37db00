"""One definition of a seed's result (gan_tasks/evaluation/seeds.py): a completed trial's final evaluation.
Sweeps written by the real writers (trial rows, evaluation files, config.yaml), no training: every
table that reports a figure over seeds sees the same seeds, and docs/storage.md's queries one value each."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import numpy as np
import pandas as pd
import pytest

from gan_tasks.config import dump_config, expand_grid, parse_config
from gan_tasks.evaluation import queries
from gan_tasks.evaluation.compare import cell_stats
from gan_tasks.evaluation.evaluate import Measured, rows, write_evaluations
from gan_tasks.evaluation.published import of_sweep
from gan_tasks.evaluation.rankings import rank_cells
from gan_tasks.evaluation.report import load_frames, render_html, summary_table, sweep_comparison
from gan_tasks.training.rows import trial_row, write_trial_row
from tests.conftest import tiny_config

STEPS = 4000
PUB = {"source": "test", "table": "T1", "runs": 10, "steps": STEPS,
       "rows": [{"name": "GAN", "match": {"loss.name": "non-saturating"},
                 "values": {"modes_covered": {"mean": 3.0, "se": 0.1}, "high_quality": {"mean": 0.9, "se": 0.05}}}]}


def write_sweep(st, sid: str, trials: list[tuple[str, int, dict, dict | None]], name: str = "seeds",
                steps: int = STEPS) -> list:
    """Per seed (status, steps done, {step: value} during training, final {metric: value} or None), written as
    the flow writes them: trial rows, eval_every/ and evaluations/ files, the config with a published block."""
    sweep = parse_config(tiny_config(name=name, grid={"loss": ["non-saturating"], "optimizer": ["adam"],
                                                      "seed": list(range(len(trials)))},
                                     train={"steps": steps, "checkpoint_every": steps}, published=PUB))
    st.write_bytes(dump_config(sweep).encode(), "sweeps", sid, "config.yaml")
    cfgs = expand_grid(sweep)
    start = datetime.now(timezone.utc) - timedelta(hours=1)
    for cfg, (status, steps, during, final) in zip(cfgs, trials):
        write_trial_row(st, trial_row(cfg, sid, status, steps, start, start + timedelta(minutes=5)))
        for step, v in during.items():
            write_evaluations(st, sid, cfg.trial_id, rows(cfg, sid, step, Measured(v)), step)
        if final is not None:
            write_evaluations(st, sid, cfg.trial_id, rows(cfg, sid, steps, Measured(final)))
    return cfgs


def ranked(st, sid: str, metric: str) -> pd.Series:
    frames = load_frames(st, sid)
    r = rank_cells(frames["trials"], frames["evaluations"], sid, *of_sweep(st, sid))
    return r[r.metric == metric].iloc[0]


def published(st, sid: str, metric: str) -> pd.Series:
    _, cmp, md = sweep_comparison(st, sid)
    return cmp[cmp.metric == metric].iloc[0], md


def stats_of(st, sid: str, metric: str) -> pd.Series:
    s = cell_stats(st, sid)
    return s[s.metric == metric].iloc[0]


def assert_two_seeds_at_3(st, sid: str) -> None:
    r, (p, md) = ranked(st, sid, "modes_covered"), published(st, sid, "modes_covered")
    c = stats_of(st, sid, "modes_covered")
    assert (r.seeds, r["mean"], r.seeds_failed, r.note) == (2, 3.0, 1, "diverged 1 of 3 seeds, no spread: all 2 seeds 3")
    assert (p.seeds, p.measured_mean, p.seeds_failed) == (2, 3.0, 1) and "| 2 (+1 failed) |" in md
    assert (c.seeds, c["mean"], c.seeds_failed) == (2, 3.0, 1)
    table = summary_table(load_frames(st, sid)).set_index("status")
    assert table.loc["completed", "modes_covered"].tolist() == [3.0, 3.0]
    assert np.isnan(table.loc["diverged", "modes_covered"])  # not the 8 it said before diverging


def test_a_diverged_seed_keeps_no_earlier_value(local_storage):
    """Two completed seeds end at 3 modes; the third diverged after saying 8 at step 3000 (eval_every)."""
    write_sweep(local_storage, "d1", [("completed", STEPS, {3000: {"modes_covered": 5.0}}, {"modes_covered": 3.0}),
                                      ("completed", STEPS, {3000: {"modes_covered": 5.0}}, {"modes_covered": 3.0}),
                                      ("diverged", 3500, {3000: {"modes_covered": 8.0}}, None)])
    assert_two_seeds_at_3(local_storage, "d1")
    # the intermediate values are stored apart: evaluations/ holds one file per evaluated trial
    assert len(local_storage.ls("sweeps", "d1", "evaluations")) == 2
    assert len(local_storage.ls("sweeps", "d1", "eval_every")) == 3


def test_a_diverged_trial_with_a_final_evaluation_on_file_is_not_counted(local_storage):
    write_sweep(local_storage, "d2", [("completed", STEPS, {}, {"modes_covered": 3.0}),
                                      ("completed", STEPS, {}, {"modes_covered": 3.0}),
                                      ("diverged", STEPS, {}, {"modes_covered": 8.0})])
    assert_two_seeds_at_3(local_storage, "d2")


def test_a_completed_trial_whose_final_evaluation_is_gone_has_no_result(local_storage):
    """A damaged final evaluation moved to quarantine/: its eval_every values do not stand in for it."""
    seed = ("completed", STEPS, {3000: {"modes_covered": 8.0}}, {"modes_covered": 3.0})
    cfgs = write_sweep(local_storage, "d3", [seed, seed])
    local_storage.quarantine("sweeps", "d3", "evaluations", f"{cfgs[1].trial_id}.parquet")
    r = ranked(local_storage, "d3", "modes_covered")
    assert (r.seeds, r["mean"]) == (1, 3.0)


def test_rankings_and_published_agree_on_stopped_trials(local_storage):
    """Early-stopped trials are left out of both, counted in the note, not failed."""
    hq = [0.90, 0.92, 0.94]
    write_sweep(local_storage, "s1", [("completed", STEPS, {2000: {"high_quality": 0.5}}, {"high_quality": v})
                                      for v in hq] + [("stopped", 2000, {2000: {"high_quality": 0.1}},
                                                       {"high_quality": 0.1})])
    r, (p, _) = ranked(local_storage, "s1", "high_quality"), published(local_storage, "s1", "high_quality")
    assert r.seeds == p.seeds == 3 and np.isclose(r["mean"], 0.92) and np.isclose(p.measured_mean, 0.92)
    assert r.seeds_failed == p.seeds_failed == 0 and r.note == "stopped 1 of 4 seeds (early_stop)"
    assert r.published_row == "GAN"
    assert "stopped 1 of 4 seeds (early_stop)" in render_html(local_storage, "s1")


QUERIES = (queries.with_pandas, queries.with_duckdb, queries.with_polars)
DURING = {10: 2.0, 20: 4.0, 30: 6.0, 40: 7.0}


@pytest.mark.parametrize("layout", ["current", "older"])
def test_the_documented_queries_return_one_value_per_seed(local_storage, layout):
    """3 seeds with final 8 and eval_every rows 2, 4, 6, 7, plus a diverged seed: mean 8 over 3 seeds, also
    in a sweep written before eval_every/ existed (its intermediate files in evaluations/)."""
    sid = "nightly-20261122-020000"
    during = {s: {"modes_covered": v} for s, v in DURING.items()}
    cfgs = write_sweep(local_storage, sid, [("completed", 50, during, {"modes_covered": 8.0})] * 3
                       + [("diverged", 45, during, None)], name="nightly", steps=50)
    if layout == "older":
        for name in local_storage.ls("sweeps", sid, "eval_every"):
            local_storage.write_bytes(local_storage.read_bytes("sweeps", sid, "eval_every", name),
                                      "sweeps", sid, "evaluations", name)
        local_storage.rm("sweeps", sid, "eval_every", recursive=True)
        assert len(local_storage.ls("sweeps", sid, "evaluations")) == 3 + 4 * 4
    for q in QUERIES:
        f = q(local_storage.url, "nightly")
        assert len(f) == 1 and f.seeds.iloc[0] == 3 and f["mean"].iloc[0] == 8.0, (q.__name__, f)
    r = ranked(local_storage, sid, "modes_covered")
    assert (r.seeds, r["mean"], r.seeds_failed) == (3, 8.0, 1)
    frames = load_frames(local_storage, sid)
    assert frames["evaluations"].final.sum() == 3 and len(frames["evaluations"]) == 3 + 4 * 4
    assert {c.trial_id for c in cfgs} == set(frames["trials"].trial_id)


def test_a_hand_built_frame_without_a_final_column_is_read_as_final_evaluations():
    trials = pd.DataFrame({"trial_id": ["a", "b", "c"], "loss": "l", "optimizer": "o", "seed": [0, 1, 2],
                           "status": ["completed", "completed", "interrupted"]})
    ev = pd.DataFrame({"trial_id": ["a", "b", "c"], "step": 10, "metric": "fid", "value": [1.0, np.nan, 2.0]})
    from gan_tasks.evaluation.seeds import seed_counts, seed_results

    out = seed_results(trials, ev)
    assert out.trial_id.tolist() == ["a"] and list(out.columns[:4]) == ["trial_id", "step", "metric", "value"]
    n = seed_counts(trials).iloc[0]
    assert (n.trials, n.completed, n.seeds_failed, n.stopped, n.note) == (3, 2, 1, 0, "interrupted 1 of 3 seeds")
