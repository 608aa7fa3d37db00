"""gan_tasks/evaluation/stats.py on values whose answers are known by hand, and the metric bounds table."""
import math

import numpy as np
import pytest
from scipy import stats as sps

from gan_tasks.config.scores import DIRECTIONS, SCORES, bounds, outside
from gan_tasks.evaluation import stats


def test_constant_seeds_get_the_exact_permutation_p_never_zero():
    # 20 ways to split 6 seeds 3 + 3; only the observed one puts all three 8s on one side: 2 * 1/20
    assert stats.two_sample_p([8, 8, 8], [7, 7, 7]) == pytest.approx(0.1)
    assert stats.two_sample_p([8, 8, 8], [7, 7, 7], alternative="greater") == pytest.approx(0.05)
    assert stats.two_sample_p([8, 8, 8], [8, 8, 8]) == 1.0
    big = stats.two_sample_p([8.0] * 12, [7.0] * 12)  # no spread, too many splits: 9,999 random ones
    assert 0 < big <= 2 / 10_000


def test_exact_below_six_seeds_welch_above():
    a, b = [1.0, 2.0, 3.0, 4.0], [3.0, 4.0, 5.0, 6.5]
    exact = sps.permutation_test((a, b), lambda x, y: np.mean(x) - np.mean(y), permutation_type="independent",
                                 n_resamples=np.inf).pvalue
    assert stats.two_sample_p(a, b) == pytest.approx(exact)
    a, b = np.arange(6.0), np.arange(6.0) + 2.5
    assert stats.two_sample_p(a, b) == pytest.approx(sps.ttest_ind(a, b, equal_var=False).pvalue)
    assert math.isnan(stats.two_sample_p([1.0], [2.0, 3.0]))  # one seed: not assessable


def test_batched_and_ragged_p_values_match_one_by_one():
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal((4, 3)), rng.standard_normal((4, 3))
    one = [stats.two_sample_p(x, y) for x, y in zip(a, b)]
    assert np.allclose(stats.two_sample_p(a, b), one)
    pairs = [(a[0], b[0]), (rng.standard_normal(7), rng.standard_normal(8)), (a[1], b[1]), ([1.0], [2.0])]
    p = stats.pvalues(pairs)
    assert np.allclose(p[[0, 2]], one[:2]) and math.isnan(p[3])
    assert p[1] == pytest.approx(stats.two_sample_p(*pairs[1]))


def test_holm_and_bh_by_hand_and_nan_aware():
    assert np.allclose(stats.holm([0.01, 0.04, 0.03]), [0.03, 0.06, 0.06])
    assert np.allclose(stats.holm([0.01, np.nan, 0.04, 0.03]), [0.03, np.nan, 0.06, 0.06], equal_nan=True)
    assert np.allclose(stats.bh([0.01, 0.04, 0.03]), [0.03, 0.04, 0.04])
    assert np.allclose(stats.bh([0.01, np.nan, 0.04]), [0.02, np.nan, 0.04], equal_nan=True)
    assert np.allclose(stats.holm([[0.01, 0.02], [0.5, 0.2]]), [[0.02, 0.02], [0.5, 0.4]])


def test_versus_best_adjusts_over_all_pairs():
    vals = [np.array([8.0, 8, 8]), np.array([7.0, 7, 7]), np.array([1.0, 2, 3])]
    raw, adj = stats.versus_best(vals, 0)
    assert math.isnan(raw[0]) and raw[1] == pytest.approx(0.1) and raw[2] == pytest.approx(0.1)
    assert np.all(adj[1:] >= raw[1:]) and np.all(adj[1:] <= 1)


def test_intervals_respect_bounds_and_no_spread():
    lo, hi = stats.mean_ci([0.02, 0.05, 0.90], 0.0, 1.0)  # t interval [-0.85, 1.50]
    assert (lo, hi) == (0.0, 1.0)
    lo, hi = stats.mean_ci([7.0, 8.0, 8.0], 0.0, 8.0)  # modes of 8: [6.23, 9.10] before the cut
    assert lo == pytest.approx(7.667 - sps.t.ppf(0.975, 2) * 0.57735 / math.sqrt(3), abs=1e-3) and hi == 8.0
    assert all(math.isnan(x) for x in stats.mean_ci([8.0, 8.0, 8.0], 0, 8))
    assert all(math.isnan(x) for x in stats.mean_ci([8.0], 0, 8))


def test_tost_and_the_difference_interval_share_one_distribution():
    diff, se, df = stats.versus_summary([1.0, 1.2, 0.9, 1.1, 1.0], 1.0, 0.05, 10)
    lo, hi = stats.diff_ci(diff, se, df, level=0.90)
    # equivalent at the margin where the 90 % interval just fits inside (-margin, margin)
    m = max(abs(lo), abs(hi))
    assert stats.tost_p(diff, se, df, m * 1.001) < 0.05 < stats.tost_p(diff, se, df, m * 0.999)
    # Welch-Satterthwaite df of the two variances of the mean
    v1, v2 = np.var([1.0, 1.2, 0.9, 1.1, 1.0], ddof=1) / 5, 0.05 ** 2
    assert df == pytest.approx((v1 + v2) ** 2 / (v1 ** 2 / 4 + v2 ** 2 / 9))


def test_detectable_shift():
    assert stats.detectable_shift(3, 3, 0.05 / 60) == math.inf  # the exact test cannot reach that level
    assert stats.detectable_shift(1, 5, 0.05) == math.inf
    d = stats.detectable_shift(10, 10, 0.05)
    power = sps.nct.sf(sps.t.ppf(0.95, 18), 18, d / math.sqrt(0.2))
    assert power == pytest.approx(0.8, abs=0.02)


def test_every_ranked_metric_has_bounds_in_one_table():
    assert set(DIRECTIONS) == set(SCORES)
    assert bounds("modes_covered", {"modes_total": 8.0}) == (0.0, 8.0) and bounds("modes_covered") == (0.0, None)
    assert bounds("high_quality") == (0.0, 1.0) and bounds("inception_score") == (1.0, None)
    assert all(bounds(m)[0] == 0.0 for m in ("reverse_kl", "fid", "kid", "intra_kid", "a2b_fid"))
    assert outside("high_quality", 1.2) and outside("fid", -1) and not outside("modes_covered", 900)
    assert "modes_total" not in SCORES and "kid_std" not in SCORES
