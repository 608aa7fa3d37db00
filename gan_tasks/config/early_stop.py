"""Early stopping of hopeless trials: asynchronous successive halving (ASHA, Li et al. 2018).

A sweep's `early_stop:` names a metric that the training-time evaluation already logs
(`evaluation.eval_every`), the rungs (generator steps) where trials are compared, and a reduction
factor eta. When a trial reaches a rung it writes its metric there like every evaluation row, then
reads the values every trial of the sweep has recorded at that rung so far (storage is the shared
state: no coordinator to start, and every decision can be re-derived from the Parquet files). It
goes on if it is among the best ceil(n / eta) of those n, else it stops: status `stopped`, its rows
and a checkpoint at that step kept, its evaluation done at that step; rankings leave it out of the
cell's statistics and say so. Asynchronous, as in ASHA and Ray Tune: a trial is compared with the
trials that reached the rung before it, so the first ones to arrive are never stopped (min_trials).
"""
from __future__ import annotations

import math

from pydantic import Field, field_validator

from gan_tasks.config.scores import DIRECTIONS  # which way is better, per ranked metric (one table)
from gan_tasks.methods.params import Strict

MIXTURE_METRICS = {"modes_covered", "high_quality", "reverse_kl", "reverse_kl_hq"}


class EarlyStop(Strict):
    metric: str  # a metric the eval_every evaluation logs for this dataset
    rungs: tuple[int, ...] = Field(min_length=1)  # steps where trials are compared, multiples of eval_every
    # Keep the best 1/eta at each rung: ASHA's eta; 3 is Hyperband's and Ray Tune's default, 2 halves.
    reduction_factor: float = Field(3.0, gt=1, le=100)
    # A rung decides only once this many trials have reached it: the first arrivals have nobody to lose to.
    min_trials: int = Field(3, ge=2, le=10_000)

    @field_validator("metric")
    @classmethod
    def _metric(cls, v: str) -> str:
        if v not in DIRECTIONS:
            raise ValueError(f"unknown metric {v!r}; valid: {', '.join(sorted(DIRECTIONS))}")
        return v

    @field_validator("rungs")
    @classmethod
    def _rungs(cls, v: tuple[int, ...]) -> tuple[int, ...]:
        if any(r <= 0 for r in v) or list(v) != sorted(set(v)):
            raise ValueError(f"rungs must be positive steps in increasing order, got {list(v)}")
        return v

    def check(self, steps: int, eval_every: int | None, kind: str) -> None:
        """Config-time check against the sweep: the rungs must fall on evaluation steps before the end."""
        if not eval_every:
            raise ValueError("early_stop needs evaluation.eval_every: rungs compare the metric it logs")
        bad = [r for r in self.rungs if r % eval_every or r >= steps]
        if bad:
            raise ValueError(f"early_stop.rungs {bad}: each must be a multiple of evaluation.eval_every "
                             f"({eval_every}) and below train.steps ({steps})")
        if (self.metric in MIXTURE_METRICS) != (kind == "points"):
            valid = sorted(MIXTURE_METRICS if kind == "points" else set(DIRECTIONS) - MIXTURE_METRICS)
            raise ValueError(f"early_stop.metric {self.metric!r} is not logged for {kind} data; valid: "
                             f"{', '.join(valid)}")


def go_on(values: dict[str, float], trial_id: str, es: EarlyStop) -> bool:
    """Whether trial_id continues past a rung where `values` (trial id -> metric, itself included)
    were recorded: it is among the best ceil(n / eta), ties go on, a NaN value is the worst."""
    n = len(values)
    if n < es.min_trials:
        return True
    higher = DIRECTIONS[es.metric]
    key = lambda v: (-math.inf if math.isnan(v) else v) if higher else (math.inf if math.isnan(v) else -v)  # noqa: E731
    ranked = sorted((key(v) for v in values.values()), reverse=True)
    return key(values[trial_id]) >= ranked[math.ceil(n / es.reduction_factor) - 1]


def rung_values(storage, sweep_id: str, step: int, metric: str) -> dict[str, float]:
    """The metric of every trial of the sweep at `step`, from its eval_every/<trial>-<step>.parquet (or
    evaluations/<trial>-<step>.parquet, where a sweep begun before eval_every/ existed wrote it)."""
    out = {}
    for folder in (("sweeps", sweep_id, "evaluations"), ("sweeps", sweep_id, "eval_every")):
        for name in storage.ls(*folder):
            if name.endswith(f"-{step:09d}.parquet"):
                rows = storage.read_parquet(*folder, name).to_pylist()
                out.update({r["trial_id"]: float(r["value"]) for r in rows if r["metric"] == metric})
    return out
