"""Every ranked metric, declared once: which way is better and the range its values can take.

Rankings, compare and early_stop rank by `higher`; confidence intervals are cut to [low, high]; the
`published:` block is checked against both. `high` may name another metric that holds the bound per
trial (modes_covered is at most modes_total: 8 on the ring, 1,000 on Stacked MNIST). Metrics not here
(modes_total, kid_std, inception_score_std, CycleGAN's *_untrained / *_identity / *_real baselines)
describe the data or an estimate's spread: they are stored, not ranked or compared.
"""
from __future__ import annotations

from typing import Annotated, NamedTuple

from pydantic import AfterValidator


class Score(NamedTuple):
    higher: bool  # higher is better
    low: float | None = None  # smallest possible value (None: unbounded)
    high: float | str | None = None  # largest possible value, or the metric that holds it per trial


FRACTION = (0.0, 1.0)  # fractions and accuracies
DIVERGENCE = (0.0, None)  # KL, FID, KID, L1 errors

SCORES: dict[str, Score] = {
    "modes_covered": Score(True, 0.0, "modes_total"), "high_quality": Score(True, *FRACTION),
    "reverse_kl": Score(False, *DIVERGENCE), "reverse_kl_hq": Score(False, *DIVERGENCE),
    "inception_score": Score(True, 1.0, None), "fid": Score(False, *DIVERGENCE), "kid": Score(False, *DIVERGENCE),
    "precision": Score(True, *FRACTION), "recall": Score(True, *FRACTION), "f_score": Score(True, *FRACTION),
    "class_accuracy": Score(True, *FRACTION), "class_mode_accuracy": Score(True, *FRACTION),
    "class_mode_accuracy_min": Score(True, *FRACTION),
    "intra_fid": Score(False, *DIVERGENCE), "intra_kid": Score(False, *DIVERGENCE),
}
# CycleGAN, per direction (gan_tasks/evaluation/cyclegan.py)
SCORES.update({f"{d}_{m}": s for d in ("a2b", "b2a") for m, s in
               (("gt_l1", Score(False, *DIVERGENCE)), ("label_acc", Score(True, *FRACTION)),
                ("cycle_l1", Score(False, *DIVERGENCE)), ("fid", Score(False, *DIVERGENCE)),
                ("kid", Score(False, *DIVERGENCE)))})

DIRECTIONS = {name: s.higher for name, s in SCORES.items()}  # metric -> higher is better


def metric_names(v: str | tuple[str, ...]) -> str | tuple[str, ...]:
    """A config's `metric`: one ranked metric, or several distinct ones (a 1-tuple becomes its name)."""
    names = (v,) if isinstance(v, str) else tuple(v)
    if not names or len(set(names)) != len(names):
        raise ValueError(f"name one metric or a list of distinct metrics, got {list(names)}")
    for m in names:
        if m not in DIRECTIONS:
            raise ValueError(f"unknown metric {m!r}; valid: {', '.join(sorted(DIRECTIONS))}")
    return names[0] if len(names) == 1 else names


RankedMetrics = Annotated[str | tuple[str, ...], AfterValidator(metric_names)]  # a config's `metric:` field


def declare(name: str, higher: bool, low: float | None = None, high: float | None = None) -> None:
    """A plugin metric's output joins the ranked metrics (config/plugins.py checks it clashes with none)."""
    SCORES[name] = Score(higher, low, high)
    DIRECTIONS[name] = higher


def bounds(metric: str, per_trial: dict[str, float] | None = None) -> tuple[float | None, float | None]:
    """(low, high) of a metric; a bound named by another metric is read from per_trial (None if absent)."""
    s = SCORES.get(metric)
    if s is None:  # a plugin metric of a sweep this process did not validate: no declared range
        return None, None
    high = (per_trial or {}).get(s.high) if isinstance(s.high, str) else s.high
    return s.low, high


def outside(metric: str, value: float) -> bool:
    """Whether a value lies outside the metric's fixed bounds (a per-trial bound is not checked)."""
    low, high = bounds(metric)
    return (low is not None and value < low) or (high is not None and value > high)


def mean_ranks(table: dict[str, list], metrics: tuple[str, ...]) -> "list[float]":
    """Per row, its mean rank over `metrics` (1 = best), each ranked in its direction, ties sharing a rank and
    a missing (NaN) value ranked worst. `table`: {metric: values, one per row}. What picks a search's best
    setting (the confirm stage) and what TPE is told (sampler: tpe), so both order settings alike."""
    import numpy as np
    from scipy.stats import rankdata

    ranks = [rankdata(np.nan_to_num((-1 if DIRECTIONS[m] else 1) * np.asarray(table[m], dtype=float), nan=np.inf))
             for m in metrics]
    return [float(r) for r in np.mean(ranks, axis=0)]
