"""Night over night (gan_tasks/evaluation/compare.py) on constructed nights: a one-sided corrected test,
one seed not assessable, missing cells and more failed seeds as regressions, detectable changes."""
import math

import numpy as np
import pandas as pd
import pytest

from gan_tasks.evaluation.compare import compare_cells, detectable, regressions


def night(cells: dict[tuple[str, str], list[float]], failed: dict[str, int] | None = None) -> pd.DataFrame:
    rows = [{"loss": loss, "optimizer": "adam", "metric": metric, "values": np.asarray(v, float),
             "mean": float(np.mean(v)), "std": float(np.std(v, ddof=1)) if len(v) > 1 else np.nan, "seeds": len(v),
             "seeds_failed": (failed or {}).get(loss, 0)} for (loss, metric), v in cells.items()]
    return pd.DataFrame(rows)


def test_one_sided_in_the_worse_direction_only():
    a = night({("x", "modes_covered"): [8, 8, 7.9, 8, 8.1, 7.9], ("x", "fid"): [10, 11, 12, 10.5, 11.5, 11]})
    worse = night({("x", "modes_covered"): [5, 5.2, 4.8, 5.1, 4.9, 5], ("x", "fid"): [20, 21, 22, 20.5, 21.5, 21]})
    better = night({("x", "modes_covered"): [9, 9.2, 8.8, 9.1, 8.9, 9], ("x", "fid"): [1, 2, 3, 1.5, 2.5, 2]})
    assert compare_cells(a, worse).flagged.all()
    up = compare_cells(a, better)
    assert not up.flagged.any() and (up.p_value > 0.9).all()  # an improvement is no regression


def test_one_seed_is_not_assessable_never_flagged():
    """The old rule flagged every change with one seed."""
    cmp = compare_cells(night({("x", "modes_covered"): [8]}), night({("x", "modes_covered"): [2]}))
    assert not cmp.flagged.any() and cmp.note.iloc[0] == "not assessable (1 seed)" and math.isnan(cmp.p_value.iloc[0])
    assert detectable(cmp).shift_sd.iloc[0] == math.inf


def test_three_seeds_fully_separated_reach_only_the_exact_p():
    cmp = compare_cells(night({("x", "modes_covered"): [8, 8, 8]}), night({("x", "modes_covered"): [7, 7, 7]}))
    assert cmp.p_value.iloc[0] == pytest.approx(0.05) and cmp.flagged.iloc[0]  # one test: p 0.05 <= 0.05
    many = {(f"c{i}", "modes_covered"): [8, 8, 8] for i in range(4)}
    tonight = {**many, ("c0", "modes_covered"): [7, 7, 7]}
    assert not compare_cells(night(many), night(tonight)).flagged.any()  # BH over 4 tests: 0.05 is not enough


def test_missing_cell_and_more_failed_seeds_are_regressions():
    a = night({("x", "fid"): [10, 11, 12], ("y", "fid"): [10, 11, 12]})
    b = night({("x", "fid"): [10, 11, 12]}, failed={"x": 1})
    cmp = compare_cells(a, b)
    bad = regressions(cmp).set_index(["loss", "metric"])
    assert bad.loc[("y", "fid"), "note"] == "missing tonight"
    assert bad.loc[("x", "seeds_failed"), "note"] == "more failed seeds than last night"
    assert len(bad) == 2
    new = compare_cells(night({("x", "fid"): [1, 2]}), night({("x", "fid"): [1, 2], ("z", "fid"): [1, 2]}))
    assert not new.flagged.any() and "new tonight" in set(new.note)


def test_detectable_shift_per_metric():
    cells = {(f"c{i}", m): list(np.arange(10.0) + i) for i in range(3) for m in ("fid", "modes_covered")}
    det = detectable(compare_cells(night(cells), night(cells))).set_index("metric")
    assert det.loc["fid", "seeds_a"] == 10 and det.loc["fid", "level"] == pytest.approx(0.05 / 6)
    assert 1.5 < det.loc["fid", "shift_sd"] < 2.5 and det.loc["fid", "shift"] == pytest.approx(
        det.loc["fid", "shift_sd"] * np.std(np.arange(10.0), ddof=1))
