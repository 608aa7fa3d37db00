"""Early stopping (ASHA): rung decisions, config checks, and a sweep that cuts trials short through
the real flow, keeps their rows and checkpoints, ranks without them, and skips them on a re-run."""
import math

import pandas as pd
import pytest

from flows.run.flow import sweep_flow
from gan_tasks.config import ConfigError, parse_config
from gan_tasks.config.early_stop import EarlyStop, forget_rungs, go_on, record_rung, rung_scores
from tests.conftest import tiny_config


def test_rung_decisions_keep_the_best_fraction_ties_and_the_first_arrivals():
    es = EarlyStop(metric="modes_covered", rungs=(100,), reduction_factor=2, min_trials=3)
    assert go_on({"a": 1.0, "b": 0.0}, "b", es), "fewer than min_trials at the rung: nobody stops"
    vals = {"a": 8.0, "b": 6.0, "c": 3.0, "d": 1.0}
    assert [go_on(vals, t, es) for t in "abcd"] == [True, True, False, False]  # best ceil(4/2) = 2 go on
    assert go_on({"a": 8.0, "b": 6.0, "c": 6.0}, "c", es), "a tie with the last kept value goes on"
    assert not go_on({"a": 8.0, "b": 6.0, "c": math.nan}, "c", es), "NaN (diverged metric) is the worst"
    lower = EarlyStop(metric="reverse_kl", rungs=(100,), reduction_factor=3, min_trials=3)
    assert [go_on({"a": 0.1, "b": 0.5, "c": 2.0}, t, lower) for t in "abc"] == [True, False, False]


@pytest.mark.parametrize("over, words", [
    ({"early_stop": {"metric": "modes_covered", "rungs": [20]}}, "early_stop needs evaluation.eval_every"),
    ({"early_stop": {"metric": "modes_covered", "rungs": [25]}, "evaluation": {"eval_every": 10}},
     "early_stop.rungs [25]: each must be a multiple of evaluation.eval_every"),
    ({"early_stop": {"metric": "modes_covered", "rungs": [60]}, "evaluation": {"eval_every": 10}}, "below train.steps"),
    ({"early_stop": {"metric": "fid", "rungs": [20]}, "evaluation": {"eval_every": 10}}, "not logged for points"),
    ({"early_stop": {"metric": "mode", "rungs": [20]}}, "unknown metric 'mode'"),
    ({"early_stop": {"metric": "modes_covered", "rungs": [40, 20]}}, "increasing order"),
    ({"early_stop": {"metric": "modes_covered", "rungs": [20], "reduction_factor": 1}}, "early_stop.reduction_factor"),
    ({"early_stop": {"metric": "modes_covered", "rungs": [20]}, "evaluation": {"eval_every": 10}, "pack_seeds": 2},
     "early_stop needs pack_seeds: 1"),
])
def test_early_stop_config_errors_name_the_field(over, words):
    with pytest.raises(ConfigError, match=words.replace("[", r"\[").replace("]", r"\]")):
        parse_config(tiny_config(**over))


@pytest.mark.slow
def test_a_sweep_stops_trials_at_a_rung_keeps_them_and_skips_them_on_rerun(ray_session, prefect_harness,
                                                                            local_storage):
    # 6 seeds, one rung at 300 of 600 steps; eta 100 keeps only the best reverse KL seen so far at the
    # rung, so every trial that reaches it after another and is not the best stops (reverse KL is
    # continuous: ties do not happen). All 6 arriving in improving order has probability 1/720.
    cfg = tiny_config(grid={"loss": ["non-saturating"], "optimizer": ["adam"], "seed": list(range(6))},
                      train={"steps": 600, "checkpoint_every": 300},
                      evaluation={"n_samples": 500, "eval_every": 300, "eval_every_samples": 500},
                      early_stop={"metric": "reverse_kl", "rungs": [300], "reduction_factor": 100, "min_trials": 2})
    out = sweep_flow(cfg, local_storage.url, "es")
    assert out["not_completed"] == 0, out
    trials = pd.read_parquet(local_storage.uri("sweeps", "es", "trials"))
    stopped = trials[trials.status == "stopped"]
    assert len(stopped) >= 1 and set(trials.status) <= {"completed", "stopped"}
    assert (stopped.steps == 300).all() and stopped.error.str.contains("early_stop at step 300").all()
    assert (trials[trials.status == "completed"].steps == 600).all()
    metrics = pd.read_parquet(local_storage.uri("sweeps", "es", "metrics"))
    for tid in stopped.trial_id:
        assert metrics[metrics.trial_id == tid].step.max() == 300, "its rows up to the rung are kept"
        assert "step-000000300.pt" in local_storage.ls("sweeps", "es", "checkpoints", tid)
    ranks = local_storage.read_table("sweeps", "es", "rankings").to_pandas()
    kl = ranks[ranks.metric == "reverse_kl"].iloc[0]
    assert kl.seeds == 6 - len(stopped) and kl.seeds_failed == 0
    assert f"stopped {len(stopped)} of 6 seeds (early_stop)" in kl.note
    # a re-run skips finished trials, stopped ones included: nothing retrains
    again = sweep_flow(cfg, local_storage.url, "es")
    assert again["not_completed"] == 0
    after = pd.read_parquet(local_storage.uri("sweeps", "es", "trials")).set_index("trial_id")
    assert (after.loc[trials.trial_id, "started_at"].to_numpy() == trials.started_at.to_numpy()).all()


def test_several_metrics_decide_by_mean_rank():
    es = EarlyStop(metric=["modes_covered", "high_quality"], rungs=(100,), reduction_factor=2, min_trials=3)
    # mean ranks: a (1.5 + 4) / 2, b (3 + 1) / 2, c (1.5 + 2) / 2, d (4 + 3) / 2: the best two are c and b
    vals = {"a": (8.0, 0.1), "b": (4.0, 0.9), "c": (8.0, 0.5), "d": (2.0, 0.2)}
    assert [go_on(vals, t, es) for t in "abcd"] == [False, True, True, False]
    assert not go_on({**vals, "e": (math.nan, 0.95)}, "e", EarlyStop(**{**es.model_dump(), "reduction_factor": 5}))
    with pytest.raises(ConfigError, match="early_stop.metric"):
        parse_config(tiny_config(evaluation={"eval_every": 10},
                                 early_stop={"metric": ["modes_covered", "fid"], "rungs": [20]}))


def test_a_rung_decision_lists_the_marks_which_are_the_evaluation_files_values(local_storage):
    """A trial at a rung marks its values there (one empty object per metric, named by the exact value); a
    decision reads one listing. A trial that reached the rung without a mark gets it from its evaluation file."""
    from gan_tasks.evaluation.evaluate import write_evaluations

    es = EarlyStop(metric=["reverse_kl", "modes_covered"], rungs=(100,), reduction_factor=2, min_trials=2)
    record_rung(local_storage, "s", 100, "a", {"reverse_kl": 0.1 + 0.2, "modes_covered": 8.0})
    record_rung(local_storage, "s", 100, "b", {"reverse_kl": math.nan, "modes_covered": 7.0})
    record_rung(local_storage, "s", 100, "b", {"reverse_kl": 1e-300, "modes_covered": 6.0})  # evaluated again
    row = {"sweep_id": "s", "trial_id": "c", "step": 100, "extractor": "", "extractor_hash": "", "provenance": "",
           "provenance_key": ""}
    write_evaluations(local_storage, "s", "c", [{**row, "metric": "reverse_kl", "value": 2.5},
                                                {**row, "metric": "modes_covered", "value": 3.0}], 100)
    assert rung_scores(local_storage, "s", 100, es) == {"a": (0.1 + 0.2, 8.0), "b": (1e-300, 6.0)}
    assert rung_scores(local_storage, "s", 100, es, reached={"a", "c"})["c"] == (2.5, 3.0)  # from its file, marked
    assert len(local_storage.ls("sweeps", "s", "rungs", f"{100:09d}")) == 6
    forget_rungs(local_storage, "s", "b")
    assert set(rung_scores(local_storage, "s", 100, es)) == {"a", "c"}


@pytest.mark.slow
def test_cohort_decisions_are_a_function_of_the_results(ray_session, prefect_harness, local_storage):
    """decide: cohort over a search's 4 settings (one cell): trials pause at the rung, the flow keeps the best
    ceil(4/2) on reverse KL; the same sweep under another id stops the same trials, and a re-run retrains none."""
    cfg = tiny_config(grid={"loss": ["non-saturating"], "optimizer": ["adam"], "seed": [0]},
                      train={"steps": 100, "checkpoint_every": 50, "log_every": 10},
                      evaluation={"n_samples": 500, "eval_every": 50, "eval_every_samples": 500},
                      search={"budget": 4, "metric": "reverse_kl", "confirm_seeds": 0},
                      early_stop={"metric": "reverse_kl", "rungs": [50], "reduction_factor": 2, "min_trials": 2,
                                  "decide": "cohort"})
    stopped = {}
    for sid in ("a", "b"):
        assert sweep_flow(cfg, local_storage.url, sid)["not_completed"] == 0
        t = pd.read_parquet(local_storage.uri("sweeps", sid, "trials"))
        assert sorted(t.status) == ["completed", "completed", "stopped", "stopped"], t.status
        assert (t[t.status == "stopped"].steps == 50).all() and t.error.str.contains("decided together").sum() == 2
        ev = pd.read_parquet(local_storage.uri("sweeps", sid, "eval_every"))
        kl = ev[(ev.metric == "reverse_kl") & (ev.step == 50)].set_index("trial_id").value
        assert set(kl.nsmallest(2).index) == set(t[t.status == "completed"].trial_id), "the best two went on"
        stopped[sid] = set(t[t.status == "stopped"].trial_id)
    assert stopped["a"] == stopped["b"]
    html = local_storage.read_bytes("sweeps", "a", "report", "index.html").decode()
    assert "<td>75%</td>" in html, "the report says what stopping saved: 2 of 4 trials stopped at half way"
    before = pd.read_parquet(local_storage.uri("sweeps", "a", "trials")).set_index("trial_id").started_at
    assert sweep_flow(cfg, local_storage.url, "a")["not_completed"] == 0
    after = pd.read_parquet(local_storage.uri("sweeps", "a", "trials")).set_index("trial_id").started_at
    assert (after.loc[before.index] == before).all(), "a re-run retrains nothing"
