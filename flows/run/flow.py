"""The sweep flow: validate -> dataset -> one task run per trial (each in a Ray actor) -> evaluate -> report."""
from __future__ import annotations

from prefect import flow, get_run_logger, task
from prefect.states import Failed
from prefect.task_runners import ThreadPoolTaskRunner

from flows.actors.pool import sweep_pool
from flows.actors.session import ray_session
from flows.actors.shipping import check_nodes, runtime_env
from flows.guard import interrupt
from flows.guard.changed import check_code
from flows.guard.lock import SweepLock, SweepLocked
from flows.guard.preflight import check_node_caches
from flows.run.fan_in import compare_with_previous, evaluate_rest, report
from flows.run.rungs import train_rungs
from flows.run.search import cohorts, confirm_trials, round_trials, settings_rows, write_settings
from flows.run.train import train_all
from gan_tasks.config import (ConfigError, SweepConfig, TrialConfig, check_sweep_id, default_sweep_id, dump_config,
                              expand_grid, extends, parse_config, same_trials)
from gan_tasks.config.tpe import rounds
from gan_tasks.data.datasets import ensure_dataset
from gan_tasks.data.userdata import read_index
from gan_tasks.data.schema import DONE
from gan_tasks.data.storage import Storage
from gan_tasks.errors import UserError

# torch, pandas, matplotlib and scipy are imported where they are used (trial rows written on a failure,
# comparison, rankings, report), not with this module: the driver starts seconds sooner.


def _transient(task, run, state) -> bool:
    """Retry storage hiccups, not a refusal: a config that differs will differ again in 5 s."""
    return not isinstance(state.result(raise_on_failure=False), UserError)


@task(retries=2, retry_delay_seconds=5, retry_condition_fn=_transient)
def prepare(sweep: SweepConfig, storage: Storage, sweep_id: str, trials: list[TrialConfig] | None = None,
            retrain_changed: bool = False) -> None:
    """Write the sweep's config.yaml, or check that a re-run of this sweep id is the same sweep with
    the same plugin code (else, with retrain_changed, move the trials of the old code aside).

    A stored config.yaml is kept as it is (the text that was run first), however it is spelt; a search whose
    budget was raised is the same sweep grown (load.extends): its config.yaml and settings are rewritten."""
    path = ("sweeps", sweep_id, "config.yaml")
    if storage.exists(*path):
        stored = storage.read_bytes(*path)
        if same_trials(stored, sweep):
            pass
        elif extends(stored, sweep):  # a search's budget raised: its settings so far stay, more are added
            storage.write_bytes(dump_config(sweep).encode(), *path)
            write_settings(storage, sweep_id, settings_rows(sweep, sweep_id))
        else:
            raise ConfigError(f"sweep {sweep_id} exists in {storage.url} with a different config; "
                              "choose another --sweep-id")
        check_code(storage, sweep_id, trials or expand_grid(sweep), retrain_changed,
                   lambda msg: get_run_logger().info(msg))
    else:
        storage.write_bytes(dump_config(sweep).encode(), *path)
    if sweep.search is not None and not storage.exists("sweeps", sweep_id, "search", "settings.parquet"):
        write_settings(storage, sweep_id, settings_rows(sweep, sweep_id))  # every setting, before any trains
    if sweep.dataset.id:  # added with gansweep data add: its manifest there and hashing to its id, before any trial
        read_index(storage, sweep.dataset.name, sweep.dataset.id, check=True)
    else:
        ensure_dataset(storage, sweep.dataset.name, sweep.dataset.params)


@flow(name="gansweep", log_prints=True)
def sweep_flow(config: dict, storage_url: str, sweep_id: str | None = None, ray_address: str | None = None,
               s3_endpoint_url: str | None = None, force: bool = False, fail_on_regression: bool = False,
               actors: str | None = None, retrain_changed: bool = False, ship_plugins: bool = True):
    """ship_plugins: on a cluster, the plugins' code goes with the run (flows/actors/shipping.py).
    retrain_changed: trials of plugin code that changed since are retrained (flows/guard/changed.py).
    actors: the name of trial actors started already (`gansweep run`: flows/run/launch.py; WarmActors: flows/actors/warm.py),
    borrowed, and left running at the end: whoever named them stops them."""
    interrupt.take_sigterm()  # from Prefect's engine: SIGTERM stops the sweep as Ctrl-C does
    sweep = parse_config(config)
    trials = expand_grid(sweep)
    storage = Storage.parse(storage_url, s3_endpoint_url)
    sweep_id = check_sweep_id(sweep_id or default_sweep_id(sweep.name))
    lock = SweepLock(storage, sweep_id)
    try:
        lock.acquire()  # before any Ray work: a second run of this id stops here
    except SweepLocked as e:  # a refusal, not a crash: the flow fails with the message, no traceback
        get_run_logger().error(str(e))
        return Failed(message=str(e), data=e)
    try:  # the lock is renewed while the sweep runs and released at its end, whatever happens
        out = _run(sweep, trials, storage, sweep_id, ray_address, force, actors, retrain_changed, ship_plugins)
        out.update(compare_with_previous(storage, sweep.name, sweep_id))
    finally:
        lock.release()
    if fail_on_regression and out["regressions"]:
        return Failed(message=f"{out['regressions']} regression(s) against {out['previous']}", data=out)
    if out["not_completed"]:
        # The flow's final state says how many trials did not complete; the data stays readable.
        return Failed(message=f"{out['not_completed']} of {len(trials)} trials did not complete: {out['counts']}",
                      data=out)
    return out


def _run(sweep: SweepConfig, trials: list[TrialConfig], storage: Storage, sweep_id: str, ray_address: str | None,
         force: bool, actors: str | None = None, retrain_changed: bool = False, ship_plugins: bool = True) -> dict:
    env = runtime_env(trials, sweep.pip, sweep.limits.shipped_bytes, ship_plugins) if ray_address else None
    with ray_session(ray_address, runtime_env=env) as joined:
        if joined and ray_address:  # not joined by `gansweep run` (which checked): the nodes checked here
            check_nodes(trials)
            check_node_caches(storage, sweep)
        pool = sweep_pool(sweep.resources, len(trials), actors)
        # Threads only wait on Ray actors; the pool bounds how many train at once. Two per slot: the
        # next trial's task run is created and waiting while the slot's current trial trains, and
        # the API server (SQLite on the same cores) is not asked for thousands of task runs at once.
        # Trials are submitted to this runner (train.submit), not to the flow's own thread per task.
        runner = ThreadPoolTaskRunner(max_workers=min(2 * len(pool.actors) + 2, len(trials)))
        with pool, runner:
            prepare(sweep, storage, sweep_id, trials, retrain_changed or force)
            if sweep.early_stop is not None and sweep.early_stop.decide == "cohort":
                results = train_rungs(sweep, trials, storage, sweep_id, pool, force, runner,
                                      cohorts(sweep, sweep_id, trials))
            else:
                results = train_all(sweep, trials, storage, sweep_id, pool, force, runner)
            results = evaluate_rest(sweep, trials, results, storage, sweep_id, pool, runner)
            adaptive = rounds(sweep.search) if sweep.search is not None and sweep.search.sampler == "tpe" else []
            for r in range(1, len(adaptive) + 1):
                extra = round_trials(sweep, storage, sweep_id, r)  # tpe: told every earlier setting's score
                more = train_all(sweep, extra, storage, sweep_id, pool, force, runner)
                results += evaluate_rest(sweep, extra, more, storage, sweep_id, pool, runner)
            if sweep.search is not None and sweep.search.confirm_seeds:  # the search done: its best settings
                extra = confirm_trials(sweep, storage, sweep_id)
                more = train_all(sweep, extra, storage, sweep_id, pool, force, runner, es=None)  # no seed stops
                results += evaluate_rest(sweep, extra, more, storage, sweep_id, pool, runner)
        out = report(storage, sweep_id)
    return {"sweep_id": sweep_id, "storage": storage.url, **out,
            "not_completed": sum(r["status"] not in DONE for r in results)}
