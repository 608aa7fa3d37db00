"""Ranking statistics on a constructed table whose means, variances and tests are known."""
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from scipy import stats

from gan_tasks.data import schema
from gan_tasks.evaluation.rankings import rank_cells, write_rankings

# Cell A: FID 10, 12, 14 (mean 12, std 2); cell B: 20, 21, 22 (mean 21, std 1); cell C: 12, 13, diverged.
FID = {("a", "adam"): [10.0, 12.0, 14.0], ("b", "rmsprop"): [20.0, 21.0, 22.0], ("c", "adam"): [12.0, 13.0]}


def frames():
    trials, ev = [], []
    for (loss, opt), vals in FID.items():
        for seed in range(3):
            tid = f"{loss}-{opt}-{seed}"
            ok = seed < len(vals)
            trials.append({"trial_id": tid, "loss": loss, "optimizer": opt, "seed": seed,
                           "status": "completed" if ok else "diverged"})
            if ok:
                ev.append({"trial_id": tid, "step": 50, "metric": "fid", "value": vals[seed] + 100})  # not final
                ev.append({"trial_id": tid, "step": 100, "metric": "fid", "value": vals[seed]})
                ev.append({"trial_id": tid, "step": 100, "metric": "inception_score", "value": 10 - vals[seed] / 10})
                ev.append({"trial_id": tid, "step": 100, "metric": "kid_std", "value": 1.0})  # not ranked
    return pd.DataFrame(trials), pd.DataFrame(ev)


def test_known_means_variances_intervals_and_ranks():
    r = rank_cells(*frames(), "s1")
    assert list(r.columns) == schema.RANKINGS.names
    assert set(r.metric) == {"fid", "inception_score"}
    fid = r[r.metric == "fid"].set_index("loss")
    assert np.isclose(fid.loc["a", "mean"], 12) and np.isclose(fid.loc["a", "std"], 2)
    assert np.isclose(fid.loc["b", "mean"], 21) and np.isclose(fid.loc["b", "std"], 1)
    half = stats.t.ppf(0.975, 2) * 2 / np.sqrt(3)  # 4.968
    assert np.isclose(fid.loc["a", "ci95_low"], 12 - half) and np.isclose(fid.loc["a", "ci95_high"], 12 + half)
    assert fid.loc["a", "median"] == 12 and fid.loc["a", "best_seed"] == 0 and fid.loc["a", "best_value"] == 10
    # Lower FID is better: a (12) ranks first, c (12.5 over two seeds) second, b last.
    assert list(fid["rank"][["a", "c", "b"]]) == [1, 2, 3] and not fid.loc["a", "higher_is_better"]
    # b against the best cell a, 3 seeds each: the exact permutation test. No split of the 6 seeds is more
    # extreme than the observed one, so p = 2 / C(6, 3) = 0.1 (Welch's t-test said 0.011, "significant").
    assert np.isclose(fid.loc["b", "p_value"], 0.1) and not fid.loc["b", "significant"]
    # Holm over the 3 pairs of cells (a-b 0.1, a-c, b-c): p_adj >= p
    assert fid.loc["b", "p_adj"] >= 0.1 and np.isnan(fid.loc["a", "p_adj"]) and not fid.loc["a", "significant"]
    # The diverged seed is reported, not hidden.
    assert fid.loc["c", "seeds"] == 2 and fid.loc["c", "seeds_failed"] == 1
    assert fid.loc["c", "note"] == "diverged 1 of 3 seeds" and fid.loc["a", "note"] == ""
    is_ = r[r.metric == "inception_score"].set_index("loss")
    assert is_.loc["a", "rank"] == 1 and is_.loc["b", "rank"] == 3 and is_.loc["a", "best_seed"] == 0


def test_single_seed_has_no_interval_and_rankings_round_trip(local_storage):
    trials, ev = frames()
    one = trials[trials.seed == 0]
    r = rank_cells(one, ev[ev.trial_id.isin(one.trial_id)], "s1")
    assert r.seeds.eq(1).all() and r["std"].isna().all() and r.ci95_low.isna().all() and r.p_value.isna().all()
    assert r.p_adj.isna().all() and not r.significant.any()
    write_rankings(local_storage, "s1", rank_cells(trials, ev, "s1"))
    back = local_storage.read_table("sweeps", "s1", "rankings")
    assert back.schema.equals(schema.RANKINGS) and back.num_rows == 6


def test_failed_cell_without_any_value_is_listed():
    trials, ev = frames()
    trials.loc[trials.loss == "b", "status"] = "failed"
    r = rank_cells(trials, ev[~ev.trial_id.str.startswith("b-")], "s1")
    b = r[(r.loss == "b") & (r.metric == "fid")].iloc[0]
    assert b.seeds == 0 and b.seeds_failed == 3 and b.note == "failed 3 of 3 seeds" and np.isnan(b["mean"])
    assert pa.Table.from_pandas(r, schema=schema.RANKINGS, preserve_index=False).num_rows == len(r)


def test_a_completed_seed_without_a_value_is_named_not_silently_dropped():
    """reverse_kl_hq is not finite for a seed with no high-quality sample: its cell's statistics are over
    the other seeds, and the note says so (the seed that lost its value is the worst one)."""
    trials, ev = frames()
    hq = ev[ev.metric == "fid"].assign(metric="reverse_kl_hq", value=lambda d: d.value / 10)
    hq.loc[hq.trial_id.eq("a-adam-2") & hq.step.eq(100), "value"] = np.nan
    r = rank_cells(trials, pd.concat([ev, hq]), "s1")
    a = r[(r.metric == "reverse_kl_hq")].set_index("loss")
    assert a.loc["a", "seeds"] == 2 and np.isclose(a.loc["a", "mean"], 1.1)
    assert a.loc["a", "note"] == "no value for 1 of 3 completed seeds", a.loc["a", "note"]
    assert a.loc["b", "note"] == "" and a.loc["c", "note"] == "diverged 1 of 3 seeds"
    assert r[(r.metric == "fid") & (r.loss == "a")].note.iloc[0] == ""


def test_one_optimizer_name_at_two_settings_stays_two_cells():
    import json

    trials, ev = frames()
    lr = {"a": 1e-3, "b": 1e-3, "c": 1e-4}  # c uses adam too, at another learning rate (1e-3: the points default)
    trials["optimizer"] = "adam"
    trials["config_json"] = [json.dumps({"dataset": {"name": "ring-8"}, "loss": {"name": "lsgan", "params": {}},
                                         "optimizer": {"name": "adam", "lr_g": lr[l], "lr_d": lr[l], "params": {}}})
                             for l in trials.loss]
    r = rank_cells(trials, ev, "s1")
    fid = r[r.metric == "fid"].set_index("loss")
    # the cell labels of gan_tasks/config/labels.py: settings that differ from the registered defaults
    assert fid.optimizer.to_dict() == {"a": "adam", "b": "adam", "c": "adam(lr 0.0001)"}
    trials["config_json"] = [json.dumps({"loss": {"name": l}, "optimizer": {"name": "adam", "lr_g": 2e-4}})
                             for l in trials.loss]
    assert set(rank_cells(trials, ev, "s1").optimizer) == {"adam"}  # one setting: the plain name


def _cells(values: dict[str, list[float]], metric: str = "modes_covered", total: float | None = 8.0):
    trials, ev = [], []
    for cell, vals in values.items():
        for seed, v in enumerate(vals):
            tid = f"{cell}-{seed}"
            trials.append({"trial_id": tid, "loss": cell, "optimizer": "adam", "seed": seed, "status": "completed"})
            ev.append({"trial_id": tid, "step": 100, "metric": metric, "value": v})
            if total is not None:
                ev.append({"trial_id": tid, "step": 100, "metric": "modes_total", "value": total})
    return pd.DataFrame(trials), pd.DataFrame(ev)


def test_constant_seeds_are_not_significant_and_show_no_spread():
    """[8, 8, 8] against [7, 7, 7]: the old Welch code said p = 0, "significant"; the exact p is 0.1."""
    r = rank_cells(*_cells({"a": [8.0, 8.0, 8.0], "b": [7.0, 7.0, 7.0]}), "s").set_index("loss")
    assert r.loc["b", "p_value"] == pytest.approx(0.1) and r.loc["b", "p_adj"] == pytest.approx(0.1)
    assert not r.significant.any()
    assert np.isnan(r.loc["a", "ci95_low"]) and r.loc["a", "note"] == "no spread: all 3 seeds 8"


def test_intervals_stay_inside_the_metric_bounds():
    # modes of 8: the t interval of [7, 8, 8] is [6.23, 9.10]; high quality [0.02, 0.05, 0.90]: [-0.85, 1.50]
    r = rank_cells(*_cells({"a": [7.0, 8.0, 8.0], "b": [3.0, 5.0, 6.0]}), "s").set_index("loss")
    assert r.loc["a", "ci95_high"] == 8.0 and 6.2 < r.loc["a", "ci95_low"] < 6.3
    r = rank_cells(*_cells({"a": [0.02, 0.05, 0.90]}, "high_quality", None), "s").iloc[0]
    assert (r.ci95_low, r.ci95_high) == (0.0, 1.0)
    r = rank_cells(*_cells({"a": [1.5, 2.0, 30.0]}, "inception_score", None), "s").iloc[0]
    assert r.ci95_low == 1.0  # IS >= 1 (a committed report showed [-9.08, 16.3])


def test_many_cells_need_holm_and_enough_seeds():
    """Eight seeds each: one clearly worse cell is found after Holm; cells that differ by noise are not."""
    rng = np.random.default_rng(3)
    vals = {f"c{i}": list(5.0 + 0.1 * rng.standard_normal(8)) for i in range(5)}
    vals["bad"] = list(3.0 + 0.1 * rng.standard_normal(8))
    r = rank_cells(*_cells(vals, total=None), "s").set_index("loss")
    assert r.loc["bad", "significant"] and r.loc["bad", "p_adj"] >= r.loc["bad", "p_value"]
    assert r.significant.sum() == 1
