"""The trials of a sweep as Prefect task runs, each training in an actor of the sweep's pool: one trial
(train_trial) or one cell's seeds packed (train_pack), followed as they end with a sweep-wide progress line."""
from __future__ import annotations

import time
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import Callable

import ray
from prefect import get_run_logger, task
from prefect.artifacts import create_progress_artifact, update_progress_artifact
from prefect.cache_policies import NO_CACHE
from prefect.futures import as_completed
from prefect.task_runners import TaskRunner

from flows.actors.lost import MAX_RESENDS, RESEND_S, ActorLost, Watch, resendable
from flows.actors.pool import ActorPool, NoActor
from flows.guard import interrupt
from flows.run.stored import Listing, completed, forget_trial, mark_failed
from flows.run.text import Tally, progress_text
from flows.server.temporary import on_temporary_api
from gan_tasks.config import EvalConfig, SweepConfig, TrialConfig
from gan_tasks.config.early_stop import EarlyStop
from gan_tasks.data.storage import Storage

POLL_SECONDS = 2.0  # how often a trial's task asks its actor for progress
PROGRESS_TIMEOUT = 20.0  # an actor that does not answer for progress this long is checked (lost.Watch)


# The run's name from its parameters: a `with_options` per trial re-reads this function's source (~2 ms).
@task(retries=1, retry_delay_seconds=5, cache_policy=NO_CACHE, task_run_name="{cfg.label} [{cfg.trial_id}]")
def train_trial(cfg: TrialConfig, storage: Storage, sweep_id: str, pool: ActorPool, force: bool = False,
                ev: EvalConfig | None = None, es: EarlyStop | None = None, metrics: Listing | None = None) -> dict:
    """Runs one trial in a Ray actor of the sweep's pool and reports its progress while it trains;
    the actor evaluates it in the same call (`evaluated`: True; a failed evaluation fails the trial).
    metrics: the sweep's metrics folder, listed once for the run (stored.Listing)."""
    logger = get_run_logger()
    if force:
        forget_trial(storage, sweep_id, cfg.trial_id)
    elif completed(storage, sweep_id, cfg.trial_id, metrics):
        logger.info("%s already completed in %s: skipped", cfg.label, sweep_id)
        return {"trial_id": cfg.trial_id, "status": "completed", "skipped": True}
    art = _progress(None, 0.0, f"{cfg.label} ({cfg.trial_id}): waiting for an actor")
    started, rate = datetime.now(timezone.utc), None

    def show(step: int, steps: int, rate: float) -> None:
        _progress(art, 100.0 * step / steps, progress_text(cfg, step, steps, rate))
        logger.info("%s: step %d/%d (%.0f steps/s)", cfg.label, step, steps, rate)

    def attempt(actor) -> tuple[list[dict], float | None]:
        return _following(actor, actor.train.remote(cfg, storage, sweep_id, ev, es, ev is not None), show)

    with in_flight([cfg]):
        try:
            (row,), rate = _train_resending(pool, cfg.label, attempt)
        except (ray.exceptions.RayError, ActorLost, NoActor) as e:
            # The actor died more often than Ray restarts it, or no node was left: record it, the sweep goes on.
            row = _failed(storage, sweep_id, [cfg], started, e)[0]
    if row.get("evaluation_error"):
        logger.error("evaluation of %s failed: %s", cfg.label, row["evaluation_error"])
        row = mark_failed(storage, sweep_id, cfg, f"evaluation failed: {row['evaluation_error']}")
    _progress(art, 100.0, progress_text(cfg, row["steps"], cfg.train.steps, rate, row["status"]))
    logger.info("%s: %s after %d steps %s", cfg.label, row["status"], row["steps"], row.get("error") or "")
    return {"trial_id": cfg.trial_id, "status": row["status"], "evaluated": ev is not None}


def _train_resending(pool: ActorPool, label: str, attempt: Callable) -> tuple[list[dict], float | None]:
    """attempt(actor) -> (rows, steps/s): a trial (one row) or a packed group (a row per seed) trained in an
    actor of the pool. An actor lost with its node, or preempted (its rows `preempted`: checkpointed and
    returned), is retired (stopped for good first: nothing trains twice at once) and the attempt re-sent,
    first in line, to another actor: it resumes from its last checkpoint (flows/actors/lost.py)."""
    first = False
    for _ in range(MAX_RESENDS + 1):
        with pool.lease(first, RESEND_S) as actor:
            try:
                rows, rate = attempt(actor)
                preempted = [r for r in rows if r["status"] == "preempted"]
                if not preempted:
                    return rows, rate
                why: BaseException = RuntimeError(preempted[0]["error"])
            except (ray.exceptions.RayError, ActorLost) as e:
                if not resendable(e):
                    raise
                why = e
            if not pool.retire(actor):
                raise ActorLost(f"its lost actor could not be stopped ({why}); not re-sent")
        get_run_logger().warning("%s: its actor was lost (%s); resuming it from its last checkpoint on another "
                                 "actor", label, str(why).splitlines()[0][:300])
        first = True
    raise ActorLost(f"lost its actor {MAX_RESENDS + 1} times; last: {why}")


def _following(actor, ref, show: Callable[[int, int, float], None]) -> tuple[list[dict], float | None]:
    """The rows of `ref`, a training call on `actor`, once it ends; meanwhile the actor's progress is asked
    every POLL_SECONDS and shown every 10 % (show(step, steps, steps/s)), and an actor that stops answering is
    watched (lost.Watch). (rows, steps/s)."""
    rate, shown, watch = None, 0.0, Watch()
    while not ray.wait([ref], timeout=POLL_SECONDS)[0]:
        try:
            step, steps, rate = ray.get(actor.progress.remote(), timeout=PROGRESS_TIMEOUT)
        except ray.exceptions.GetTimeoutError:  # restarting, or waiting for room after its node was lost
            watch.check(actor)
            continue
        if steps and step / steps >= shown + 0.1:  # every 10 %, not every poll
            shown = step / steps
            show(step, steps, rate)
    out = ray.get(ref)
    rows = out if isinstance(out, list) else [out]
    try:  # the rate over the whole run, as it ended (for the UI only: never fails the trial)
        step, _, last = ray.get(actor.progress.remote(), timeout=10)
        rate = last if step == rows[0]["steps"] else rate
    except ray.exceptions.RayError:
        pass
    return rows, rate


def _progress(art, percent: float, text: str):
    """A trial's progress artifact created (art None) or updated; none on the temporary API a run starts
    without PREFECT_API_URL, which has no UI to show it: there they were 3 API calls and database rows a
    trial, and the API server's CPU on the cores the trials train on (bench/results.md, seventh pass)."""
    if on_temporary_api():
        return None
    if art is None:
        return create_progress_artifact(percent, description=text)
    update_progress_artifact(art, percent, description=text)
    return art


@contextmanager
def in_flight(cfgs: list[TrialConfig]):
    """These trials are with an actor: Ctrl-C reads their rows (interrupt.IN_FLIGHT), not the sweep's. Once
    the handler runs they stay listed: their actors die under it, and it reads the set after."""
    ids = {c.trial_id for c in cfgs}
    interrupt.IN_FLIGHT.update(ids)
    try:
        yield
    finally:
        if not interrupt.STOPPING.is_set():
            interrupt.IN_FLIGHT.difference_update(ids)


def _failed(storage: Storage, sweep_id: str, cfgs: list[TrialConfig], started: datetime, e: Exception) -> list[dict]:
    """`failed` rows for trials whose actor died, written unless Ctrl-C stopped it (the handler writes
    `interrupted` then)."""
    from gan_tasks.training.rows import history, trial_row, write_trial_row

    rows = [trial_row(c, sweep_id, "failed", 0, started, datetime.now(timezone.utc), f"{type(e).__name__}: {e}",
                      history=history(storage, sweep_id, c.trial_id)) for c in cfgs]
    for r in rows if not interrupt.STOPPING.is_set() else []:
        write_trial_row(storage, r)
    return rows


@task(retries=1, retry_delay_seconds=5, cache_policy=NO_CACHE)
def train_pack(cfgs: list[TrialConfig], storage: Storage, sweep_id: str, pool: ActorPool,
               force: bool = False) -> list[dict]:
    """pack_seeds > 1: the seeds of one cell trained together in one actor (gan_tasks/training/packing.py),
    re-sent as a trial is after its node was lost or preempted (_train_resending)."""
    for c in cfgs if force else []:
        forget_trial(storage, sweep_id, c.trial_id)
    todo = [c for c in cfgs if force or not completed(storage, sweep_id, c.trial_id)]
    out = {c.trial_id: {"trial_id": c.trial_id, "status": "completed", "skipped": True} for c in cfgs}
    if todo:
        logger, label = get_run_logger(), pack_label(todo)

        def show(step: int, steps: int, rate: float) -> None:
            logger.info("%s: step %d/%d (%.0f steps/s)", label, step, steps, rate)

        def attempt(actor) -> tuple[list[dict], float | None]:
            return _following(actor, actor.train_packed.remote(todo, storage, sweep_id), show)

        with in_flight(todo):
            started = datetime.now(timezone.utc)
            try:
                rows, _ = _train_resending(pool, label, attempt)
            except (ray.exceptions.RayError, ActorLost, NoActor) as e:
                rows = _failed(storage, sweep_id, todo, started, e)
        out.update({r["trial_id"]: {"trial_id": r["trial_id"], "status": r["status"]} for r in rows})
    return [out[c.trial_id] for c in cfgs]


def pack_label(cfgs: list[TrialConfig]) -> str:
    return f"{cfgs[0].loss.name}/{cfgs[0].optimizer.name} seeds {','.join(str(t.seed) for t in cfgs)}"


def packs(trials: list[TrialConfig], n: int) -> list[list[TrialConfig]]:
    """Trials grouped by cell (all but the seed), each cell cut into packs of at most n seeds."""
    cells: dict[str, list[TrialConfig]] = {}
    for t in trials:
        cells.setdefault(t.model_dump_json(exclude={"seed"}), []).append(t)
    return [c[i:i + n] for c in cells.values() for i in range(0, len(c), n)]


def submit(runner: TaskRunner, task, **parameters):
    """task.submit(**parameters) on `runner`, a bounded thread pool, rather than on the flow's own, which
    has a thread per submitted task: a task run is created only when a thread takes it, so at most
    max_workers task runs (and their API calls) exist at once, whatever the number of trials."""
    return runner.submit(task, parameters)


def train_all(sweep: SweepConfig, trials: list[TrialConfig], storage: Storage, sweep_id: str, pool: ActorPool,
              force: bool, runner: TaskRunner, es: EarlyStop | None | str = "sweep") -> list[dict]:
    """es: the sweep's early_stop by default; None (no stopping), or a round's rung (flows/run/rungs.py)."""
    es = sweep.early_stop if es == "sweep" else es
    if sweep.pack_seeds > 1:
        groups = packs(trials, sweep.pack_seeds)
        futures = [submit(runner, train_pack.with_options(task_run_name=pack_label(g)), cfgs=g, storage=storage,
                          sweep_id=sweep_id, pool=pool, force=force) for g in groups]
    else:
        metrics = Listing(storage, sweep_id, "metrics")
        tagged = not on_temporary_api()
        futures = [submit(runner, train_trial.with_options(tags=_tags(t)) if tagged else train_trial, cfg=t,
                          storage=storage, sweep_id=sweep_id, pool=pool, force=force, ev=sweep.evaluation, es=es,
                          metrics=metrics) for t in trials]
    by_id = {r["trial_id"]: r for r in _follow(futures, len(trials), len(pool.actors))}
    return [by_id[t.trial_id] for t in trials]


def _tags(t: TrialConfig) -> list[str]:
    """loss:, optimizer:, seed: tags for filtering in a Prefect UI; train_all puts none on the temporary API a
    run starts without PREFECT_API_URL, which has no UI and ends with the run. Each tag costs its task
    run a concurrency-slot acquire, lease and release (API round trips against SQLite on the same
    cores): with 256 one-second trials on 2 busy cores, that API answered 503 and the flow crashed."""
    return [f"loss:{t.loss.name}", f"optimizer:{t.optimizer.name}", f"seed:{t.seed}"]


def _follow(futures: list, total: int, slots_: int) -> list[dict]:
    """Results as they come, with one sweep-wide progress line each time a trial (or pack) ends:
    in the terminal and in the flow run's log in the UI."""
    logger, t0, rows, tally = get_run_logger(), time.perf_counter(), [], Tally(total, slots_)
    for f in as_completed(futures):
        out = f.result()
        new = out if isinstance(out, list) else [out]
        rows += new
        logger.info(tally.add(new).line(time.perf_counter() - t0))
    return rows
