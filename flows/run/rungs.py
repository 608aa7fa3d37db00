"""`early_stop: {decide: cohort}`: successive halving whose decisions are a function of the results alone.

Trials train to a rung and pause there (status `paused`, a checkpoint at the rung). Once every trial of the
round has, each cohort (a search's cell: the sampled settings of one loss; else the whole sweep) is decided
from all of its values at that rung at once (gan_tasks/config/early_stop.py: cohort_survivors): the best
ceil(n / eta) resume, the others are `stopped` at the rung and evaluated there. Storage is the state: a
re-run reads each trial's row, skips what is decided, and decides every rung again from the same values."""
from __future__ import annotations

from datetime import datetime, timezone

from prefect import get_run_logger
from prefect.task_runners import TaskRunner

from flows.actors.pool import ActorPool
from flows.run.train import train_all
from gan_tasks.config import SweepConfig, TrialConfig
from gan_tasks.config.early_stop import cohort_survivors, rung_scores, show
from gan_tasks.data.schema import DONE
from gan_tasks.data.storage import Storage


def _state(storage: Storage, sweep_id: str, tid: str) -> tuple[str, int]:
    """(status, steps) of the trial's row; ('', 0) without one."""
    path = ("sweeps", sweep_id, "trials", f"{tid}.parquet")
    if not storage.exists(*path):
        return "", 0
    rows = storage.read_parquet(*path).to_pylist()
    return (rows[-1]["status"], rows[-1]["steps"]) if rows else ("", 0)


def _stop(storage: Storage, sweep_id: str, t: TrialConfig, rung: int, why: str) -> None:
    from gan_tasks.training.rows import history, trial_row, write_trial_row

    at = datetime.now(timezone.utc)
    write_trial_row(storage, trial_row(t, sweep_id, "stopped", rung, at, at, why,
                                       history=history(storage, sweep_id, t.trial_id)))


def train_rungs(sweep: SweepConfig, trials: list[TrialConfig], storage: Storage, sweep_id: str, pool: ActorPool,
                force: bool, runner: TaskRunner, cohorts: dict[str, str]) -> list[dict]:
    """Every trial trained rung by rung, cohorts decided between rungs; one result per trial, as train_all's."""
    es, logger, active = sweep.early_stop, get_run_logger(), list(trials)
    for rung in es.rungs:
        todo = [t for t in active if force or not _decided(*_state(storage, sweep_id, t.trial_id), rung)]
        train_all(sweep, todo, storage, sweep_id, pool, force, runner, es=es.model_copy(update={"rungs": (rung,)}))
        force = False
        states = {t.trial_id: _state(storage, sweep_id, t.trial_id) for t in active}
        reached = {tid for tid, (status, steps) in states.items()
                   if status == "completed" or (status in ("paused", "stopped") and steps == rung)}
        values = rung_scores(storage, sweep_id, rung, es, reached)
        survivors: set[str] = set()
        for cohort in sorted({cohorts[t] for t in reached}):
            members = {t: values[t] for t in reached if cohorts[t] == cohort and t in values}
            keep = cohort_survivors(members, es)
            survivors |= keep
            for t in active:
                if t.trial_id in members and t.trial_id not in keep and states[t.trial_id][0] == "paused":
                    _stop(storage, sweep_id, t, rung, f"early_stop at step {rung}: {show(members[t.trial_id])} not in "
                                                      f"the best 1/{es.reduction_factor:g} of cohort {cohort} "
                                                      f"({len(members)} trials, decided together)")
            logger.info("rung %d, cohort %s: %d of %d go on", rung, cohort, len(keep), len(members))
        active = [t for t in active if t.trial_id in survivors]
    train_all(sweep, [t for t in active if _state(storage, sweep_id, t.trial_id)[0] not in DONE], storage, sweep_id,
              pool, False, runner, es=None)
    return [{"trial_id": t.trial_id, "status": _state(storage, sweep_id, t.trial_id)[0] or "failed", "skipped": True}
            for t in trials]


def _decided(status: str, steps: int, rung: int) -> bool:
    """Whether a trial needs no training for this rung: done, or paused at or past it."""
    return status in DONE or (status == "paused" and steps >= rung)
