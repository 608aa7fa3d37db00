"""Calibration: seeded simulations where nothing differs, through the functions the project uses
(gan_tasks/evaluation/stats.py, rankings, compare, published). Each false-alarm rate must stay at or
below 0.05 plus three Monte Carlo standard errors. Vectorised: together a few seconds."""
import itertools
import math

import numpy as np
import pandas as pd
import pytest

from gan_tasks.config.published import Figure, Published
from gan_tasks.evaluation import stats
from gan_tasks.evaluation.compare import compare_cells
from gan_tasks.evaluation.published import absolute, ordering

ALPHA = 0.05


def bound(reps: int) -> float:
    return ALPHA + 3 * math.sqrt(ALPHA * (1 - ALPHA) / reps)


def ranking_false_flags(reps: int, cells: int, seeds: int, seed: int) -> float:
    """P(>= 1 cell "significantly worse than the best") when all cells are one distribution: the
    procedure of stats.versus_best, batched over simulated sweeps."""
    x = np.random.default_rng(seed).standard_normal((reps, cells, seeds))
    pairs = np.array(list(itertools.combinations(range(cells), 2)))
    adj = stats.holm(stats.two_sample_p(x[:, pairs[:, 0]], x[:, pairs[:, 1]]))
    best = x.mean(axis=-1).argmax(axis=-1)[:, None]
    with_best = (pairs[None, :, 0] == best) | (pairs[None, :, 1] == best)
    # one sweep through the function itself gives the same adjusted p-values
    raw, padj = stats.versus_best(list(x[0]), int(best[0, 0]))
    others = [j for j in range(cells) if j != best[0, 0]]
    assert np.allclose(np.sort(padj[others]), np.sort(adj[0][with_best[0]]))
    return float(((adj <= ALPHA) & with_best).any(axis=-1).mean())


@pytest.mark.parametrize("seeds,reps", [(3, 2000), (10, 2000)])
def test_rankings_of_identical_cells_rarely_flag_any(seeds, reps):
    rate = ranking_false_flags(reps, 12, seeds, seeds)
    print(f"rankings 12 cells x {seeds} seeds: P(>= 1 false flag) = {rate:.4f}")
    assert rate <= bound(reps)


def nightly_false_regressions(reps: int, seeds: int, seed: int, rho: float = 0.0) -> float:
    """P(>= 1 regression in a night without change): 12 cells x 5 score metrics, one-sided tests,
    Benjamini-Hochberg over the 60 (compare.compare_cells' procedure, batched). rho: correlation of
    the metrics of one seed."""
    rng = np.random.default_rng(seed)

    def draw():
        common = rng.standard_normal((reps, 12, 1, seeds))
        return math.sqrt(rho) * common + math.sqrt(1 - rho) * rng.standard_normal((reps, 12, 5, seeds))

    last, tonight = draw().reshape(reps, 60, seeds), draw().reshape(reps, 60, seeds)
    p = stats.two_sample_p(tonight, last, alternative="less")
    flags = stats.bh(p) <= ALPHA
    # the first simulated night through compare_cells itself flags the same rows
    rows = lambda v: pd.DataFrame([{"loss": f"c{i // 5}", "optimizer": "adam", "metric": m, "values": v[i],
                                    "mean": v[i].mean(), "std": v[i].std(ddof=1), "seeds": seeds, "seeds_failed": 0}
                                   for i, m in enumerate(["fid", "modes_covered", "kid", "recall", "precision"] * 12)])
    cmp = compare_cells(rows(last[0]), rows(tonight[0]))
    assert cmp.flagged.sum() == flags[0].sum()
    return float(flags.any(axis=-1).mean())


@pytest.mark.parametrize("seeds,reps", [(2, 2000), (3, 2000), (5, 800), (10, 2000)])
def test_nightly_without_change_rarely_regresses(seeds, reps):
    rate = nightly_false_regressions(reps, seeds, seeds)
    corr = nightly_false_regressions(reps, seeds, 100 + seeds, rho=0.7)
    print(f"nightly {seeds} seeds: P(>= 1 regression) = {rate:.4f} (metrics correlated 0.7: {corr:.4f})")
    assert rate <= bound(reps) and corr <= bound(reps)


def agree_rate(seeds: int, truth_in_margins: float, reps: int = 2000, runs: int = 10) -> float:
    """P("agrees") by published.absolute when our true mean sits truth_in_margins margins from the paper's."""
    rng = np.random.default_rng(seeds)
    pub = Published.model_validate({"source": "s", "table": "t", "runs": runs, "steps": 100, "rows": [
        {"name": "a", "match": {"seed": 0}, "values": {"fid": {"mean": 10.0}}}]})
    margin = 1.0
    hits = 0
    for _ in range(reps):
        paper = 10.0 + rng.standard_normal(runs)
        fig = Figure(mean=paper.mean(), se=paper.std(ddof=1) / math.sqrt(runs), margin=margin)
        ours = 10.0 + truth_in_margins * margin + rng.standard_normal(seeds)
        hits += absolute(pub, "fid", fig, ours, 1.0)["verdict_absolute"] == "agrees"
    return hits / reps


@pytest.mark.parametrize("seeds", [5, 10])
def test_agreement_is_rare_when_the_truth_sits_at_twice_the_margin(seeds):
    far, edge = agree_rate(seeds, 2.0), agree_rate(seeds, 1.0)
    print(f"published {seeds} seeds: P(agrees) = {far:.4f} at twice the margin, {edge:.4f} at the margin")
    assert far <= bound(2000) and edge <= bound(2000)


def test_identical_rows_rarely_reproduce_an_ordering():
    """The paper's rows differ significantly; ours come from one distribution: P("reproduced") small
    (batched, and the first sweeps through published.ordering itself). Where the paper's rows are
    identical too, the ordering is never assessable."""
    reps, seeds = 4000, 5
    rng = np.random.default_rng(7)
    a, b = rng.standard_normal((reps, seeds)), rng.standard_normal((reps, seeds))
    p = stats.two_sample_p(a, b)  # one counted pair per metric: Holm leaves it as it is
    reproduced = (p <= ALPHA) & (a.mean(axis=1) < b.mean(axis=1))  # the paper's a (6.3) < b (7.9)
    pub = Published.model_validate({"source": "s", "table": "t", "runs": 10, "steps": 100, "rows": [
        {"name": n, "match": {"seed": 0}, "values": {"fid": {"mean": 1.0}}} for n in ("a", "b")]})
    for i in range(40):
        for paper in ((6.3, 7.9), (7.0, 7.0)):
            df = pd.DataFrame({"published_row": ["a", "b"], "metric": "fid", "published_mean": paper,
                               "published_se": 0.1, "seeds": seeds, "values_": [a[i], b[i]],
                               "measured_mean": [a[i].mean(), b[i].mean()]})
            got = ordering(pub, df, 1.0)[0]
            assert got.startswith("reproduced") == bool(reproduced[i]) if paper[0] != paper[1] else (
                got == "not assessable (paper's difference not significant)")
    rate = float(reproduced.mean())
    print(f"ordering, identical rows, {seeds} seeds: P(reproduced) = {rate:.4f}")
    assert rate <= bound(reps)
