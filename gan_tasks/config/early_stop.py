"""Early stopping of hopeless trials: asynchronous successive halving (ASHA, Li et al. 2018).

A sweep's `early_stop:` names a metric that the training-time evaluation already logs
(`evaluation.eval_every`), the rungs (generator steps) where trials are compared, and a reduction
factor eta. When a trial reaches a rung it writes its metric there like every evaluation row, marks it
at the rung (rungs/<step>/<trial>~<metric>~<value>: an empty object named by its value), then lists the
values every trial of the sweep has marked at that rung so far: one listing, not a read of each trial's
file (storage is the shared state: no coordinator to start, and every mark is a copy of an evaluation
file's value, so every decision can be re-derived from the Parquet files). It
goes on if it is among the best ceil(n / eta) of those n, else it stops: status `stopped`, its rows
and a checkpoint at that step kept, its evaluation done at that step; rankings leave it out of the
cell's statistics and say so. Asynchronous, as in ASHA and Ray Tune: a trial is compared with the
trials that reached the rung before it, so the first ones to arrive are never stopped (min_trials).
`decide: cohort` makes the decisions a function of the results alone: trials pause at a rung, and the flow
decides once their cohort has reached it (flows/run/rungs.py). `metric` may list several metrics (mean rank).
"""
from __future__ import annotations

import math
from typing import Any, Literal

from pydantic import Field, field_validator

from gan_tasks.config.scores import DIRECTIONS, RankedMetrics  # which way is better, per ranked metric (one table)
from gan_tasks.methods.params import Strict

MIXTURE_METRICS = {"modes_covered", "high_quality", "reverse_kl", "reverse_kl_hq"}


class EarlyStop(Strict):
    # A metric the eval_every evaluation logs for this dataset, or several: then a trial's score is its mean
    # rank over them (each in its own direction), so one metric alone (high quality) cannot reward collapse.
    metric: RankedMetrics
    rungs: tuple[int, ...] = Field(min_length=1)  # steps where trials are compared, multiples of eval_every
    # Keep the best 1/eta at each rung: ASHA's eta; 3 is Hyperband's and Ray Tune's default, 2 halves.
    reduction_factor: float = Field(3.0, gt=1, le=100)
    # A rung decides only once this many trials have reached it: the first arrivals have nobody to lose to.
    min_trials: int = Field(3, ge=2, le=10_000)
    # asynchronous: ASHA, each trial against those that reached the rung before it (which trials stop depends
    # on timing). cohort: trials pause at each rung; once their whole cohort (a search's cell, else the sweep)
    # reached it the flow decides from all of its values at once, so a re-run stops the same trials.
    decide: Literal["asynchronous", "cohort"] = "asynchronous"

    @property
    def metrics(self) -> tuple[str, ...]:
        return (self.metric,) if isinstance(self.metric, str) else self.metric

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
        for m in self.metrics:
            if (m in MIXTURE_METRICS) != (kind == "points"):
                valid = sorted(MIXTURE_METRICS if kind == "points" else set(DIRECTIONS) - MIXTURE_METRICS)
                raise ValueError(f"early_stop.metric {m!r} is not logged for {kind} data; valid: {', '.join(valid)}")


def go_on(values: dict[str, Any], trial_id: str, es: EarlyStop) -> bool:
    """Whether trial_id continues past a rung where `values` (trial id -> metric, or a tuple of es.metrics'
    values; itself included) were recorded: it is among the best ceil(n / eta), ties go on, NaN is the worst.
    Several metrics: by mean rank over them (ties share their mean rank)."""
    n = len(values)
    if n < es.min_trials:
        return True
    if len(es.metrics) > 1:
        return _go_on_ranks(values, trial_id, es)
    higher = DIRECTIONS[es.metric]
    key = lambda v: (-math.inf if math.isnan(v) else v) if higher else (math.inf if math.isnan(v) else -v)  # noqa: E731
    ranked = sorted((key(v) for v in values.values()), reverse=True)
    return key(values[trial_id]) >= ranked[math.ceil(n / es.reduction_factor) - 1]


def _go_on_ranks(values: dict[str, tuple], trial_id: str, es: EarlyStop) -> bool:
    from scipy.stats import rankdata

    ids = sorted(values)
    ranks = []
    for i, m in enumerate(es.metrics):  # rank 1 = best; NaN the worst
        v = [values[t][i] for t in ids]
        worst = -math.inf if DIRECTIONS[m] else math.inf
        v = [worst if math.isnan(x) else x for x in v]
        ranks.append(rankdata([-x for x in v] if DIRECTIONS[m] else v))
    mean = dict(zip(ids, sum(ranks) / len(ranks)))
    cut = sorted(mean.values())[math.ceil(len(ids) / es.reduction_factor) - 1]
    return bool(mean[trial_id] <= cut)


def cohort_survivors(values: dict[str, Any], es: EarlyStop) -> set[str]:
    """decide: cohort: the trials of one cohort that go on past a rung, from all of its values at once."""
    return {t for t in values if go_on(values, t, es)}


def rung_scores(storage, sweep_id: str, step: int, es: EarlyStop, reached=()) -> dict[str, Any]:
    """The value of es.metric of every trial at rung `step`, or of each of es.metrics as one tuple per trial
    (NaN where one is missing), from one listing of the rung's marks (record_rung). A trial of `reached`
    without a mark (a run cut short between its evaluation and its mark, or one from before marks) is
    read from its evaluation file at the step and marked now: the values are those of the files."""
    marks = rung_marks(storage, sweep_id, step)
    for tid in set(reached) - set().union(*marks.values()):
        found = _evaluation_at(storage, sweep_id, step, tid, es.metrics)
        if found:
            record_rung(storage, sweep_id, step, tid, found)
            for m, v in found.items():
                marks.setdefault(m, {})[tid] = v
    if len(es.metrics) == 1:
        return marks.get(es.metrics[0], {})
    per = [marks.get(m, {}) for m in es.metrics]
    ids = set().union(*per)
    return {t: tuple(p.get(t, math.nan) for p in per) for t in ids}


def show(v: Any) -> str:
    return ", ".join(f"{x:.4g}" for x in v) if isinstance(v, tuple) else f"{v:.4g}"


def _rung(sweep_id: str, step: int) -> tuple[str, ...]:
    return ("sweeps", sweep_id, "rungs", f"{step:09d}")


def record_rung(storage, sweep_id: str, step: int, trial_id: str, values: dict[str, float]) -> None:
    """A trial's metrics at a rung, as the names of empty objects rungs/<step>/<trial>~<metric>~<value>
    (repr: exact), so that a decision is one listing of the rung, not a read of every trial's file there.
    Written after the trial's evaluation file; an older mark of the trial at this rung goes."""
    new = {f"{trial_id}~{m}~{float(v)!r}" for m, v in values.items()}
    for name in new:
        storage.write_bytes(b"", *_rung(sweep_id, step), name)
    for name in set(storage.ls(*_rung(sweep_id, step), prefix=f"{trial_id}~")) - new:
        storage.rm(*_rung(sweep_id, step), name)


def rung_marks(storage, sweep_id: str, step: int) -> dict[str, dict[str, float]]:
    """metric -> {trial id: value} of every mark at rung `step`: one listing."""
    out: dict[str, dict[str, float]] = {}
    for name in storage.ls(*_rung(sweep_id, step)):
        tid, metric, value = name.split("~")
        out.setdefault(metric, {})[tid] = float(value)
    return out


def forget_rungs(storage, sweep_id: str, trial_id: str) -> None:
    """Remove a trial's marks at every rung (it trains again from scratch, or is superseded)."""
    for step in storage.ls("sweeps", sweep_id, "rungs"):
        for name in storage.ls("sweeps", sweep_id, "rungs", step, prefix=f"{trial_id}~"):
            storage.rm("sweeps", sweep_id, "rungs", step, name)


def _evaluation_at(storage, sweep_id: str, step: int, trial_id: str, metrics: tuple[str, ...]) -> dict[str, float]:
    """{metric: value} of a trial's evaluation at `step`: eval_every/<trial>-<step>.parquet (or evaluations/,
    where a sweep begun before eval_every/ existed wrote it); {} if it has none."""
    for folder in ("eval_every", "evaluations"):
        path = ("sweeps", sweep_id, folder, f"{trial_id}-{step:09d}.parquet")
        if storage.exists(*path):
            rows = storage.read_parquet(*path).to_pylist()
            return {r["metric"]: float(r["value"]) for r in rows if r["metric"] in metrics}
    return {}
