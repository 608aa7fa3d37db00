"""A sweep run as `gansweep run` runs it, callable from Python: checks first (config, preflight, finished
sweep, lock), then the start-up overlapped (WarmStart), Ctrl-C handled, the flow, and its result.

WarmStart: without PREFECT_API_URL a flow run starts Prefect's temporary API on its first API call, then
the flow starts Ray, then the actors (a process each importing torch). Here the server is spawned first
(flows/server/temporary.py); while it starts, this thread starts Ray and the sweep's actors, which the
flow takes over by the name it is given (`actors`, flows/actors/pool.py: pool_name).
"""
from __future__ import annotations

import atexit
import contextlib
import gc
import time
from typing import Callable

from flows.actors.pool import pool_name, sweep_pool
from flows.actors.session import join_cluster, ray_session
from flows.actors.shipping import check_nodes, runtime_env
from flows.guard import interrupt
from flows.guard.changed import check_code
from flows.guard.finished import finished
from flows.guard.lock import SweepLock
from flows.guard.preflight import check_node_caches, preflight, wait_for_cluster_resources
from flows.server.temporary import start_temporary_api
from gan_tasks.config import SweepConfig, check_sweep_id, default_sweep_id, expand_grid
from gan_tasks.data.storage import Storage


class WarmStart:
    def __init__(self, say=print):
        """Spawns the temporary Prefect API, if this run will use one."""
        self.actors, self._pool, self._ray = None, None, contextlib.ExitStack()
        self._server = start_temporary_api(say)

    def start_ray(self, sweep: SweepConfig, n_trials: int, sweep_id: str, ray_address: str | None) -> None:
        """Ray, and the sweep's actors on a local Ray (a cluster's start when the flow asks for them)."""
        self._ray.enter_context(ray_session(ray_address))
        if not ray_address:
            self.actors = pool_name(sweep_id)  # the flow's `actors` parameter
            self._pool = sweep_pool(sweep.resources, n_trials, self.actors)  # the flow borrows them

    def wait(self) -> None:
        """Until the API server answers."""
        if self._server is not None:
            self._server.wait()

    def close(self) -> None:
        import ray

        if self._pool is not None and ray.is_initialized():
            self._pool.shutdown()
        self._ray.close()


def launch(sweep: SweepConfig, storage: Storage, sweep_id: str | None = None, ray_address: str | None = None,
           force: bool = False, wait_for_resources: float = 300.0, say: Callable[[str], None] = print,
           handle_signals: bool = True, retrain_changed: bool = False, ship_plugins: bool = True) -> dict:
    """Run one sweep; its summary: the flow's output (`counts`, `report`, `not_completed`...), `sweep_id`,
    `seconds`, and `already` (a finished sweep, verified from storage alone: nothing ran). A problem the
    user can fix is a UserError (config, storage, datasets, resources, a locked sweep id).
    handle_signals: Ctrl-C marks running trials interrupted, stops every child process and exits 130.
    retrain_changed: a re-run after a plugin's code changed retrains the trials that used the old code
    (else it is refused: flows/guard/changed.py); --force implies it.
    ship_plugins: with ray_address, the plugins' code goes to the workers (flows/actors/shipping.py); off,
    the nodes must have them installed. Either way every node must import them before a trial starts."""
    trials = expand_grid(sweep)
    n_trials = len(trials)
    preflight(storage, sweep, ray_address)  # storage, datasets, resources: before Ray or Prefect
    sweep_id = sweep_id and check_sweep_id(sweep_id)
    t0 = time.perf_counter()
    if sweep_id and not force and (out := finished(storage, sweep, sweep_id)) is not None:
        return {**out, "sweep_id": sweep_id, "already": True, "seconds": time.perf_counter() - t0,
                "not_completed": 0}
    sid = sweep_id or default_sweep_id(sweep.name)
    SweepLock(storage, sid).check()  # a live run holds this id: say so before Prefect, Ray, torch load
    retrain = retrain_changed or force
    if not retrain:  # plugin code changed since the stored trials ran: refused now
        check_code(storage, sid, trials, False, say)
    env = runtime_env(trials, sweep.pip, sweep.limits.shipped_bytes, ship_plugins) if ray_address else None
    if ray_address:  # join now: the flow uses this connection; a request no node can hold fails here
        join_cluster(ray_address, env)
        wait_for_cluster_resources(sweep.resources, ray_address, wait_for_resources, say)
        check_node_caches(storage, sweep)  # every node that can train: room in its cache for the dataset
        if check_nodes(trials):  # a node that cannot import a plugin module: refused before any trial
            say(f"plugin code imports on every node ({len(env['py_modules']) - 2} package(s) shipped)")
    if retrain:  # every check passed: the trials of the old code are moved aside, their cells retrain
        check_code(storage, sid, trials, True, say)
    # kill -9 of an earlier run left its Ray and Prefect server running: stop them; this run's own
    # processes (started from here on, the Prefect API first) carry its name
    interrupt.clean_orphans(say)
    interrupt.mark_run()
    warm = WarmStart(say)  # the temporary Prefect API starts now, beside the imports and Ray
    from flows.run.flow import sweep_flow  # imports Prefect's engine while the server starts

    if handle_signals:
        interrupt.install(storage, sid, say)
    # Python's last garbage collection at exit walks every object torch, Prefect and pydantic made, for
    # memory the OS takes back anyway: frozen at exit, they are skipped (other exit handlers still run).
    atexit.register(gc.freeze)
    t0 = time.perf_counter()
    try:
        warm.start_ray(sweep, n_trials, sid, ray_address)
        warm.wait()
        state = sweep_flow(sweep.model_dump(mode="json"), storage.url, sid, ray_address, storage.endpoint_url,
                           force, actors=warm.actors, retrain_changed=retrain_changed, ship_plugins=ship_plugins,
                           return_state=True)
    finally:
        warm.close()
    out = state.result(raise_on_failure=False)
    if isinstance(out, BaseException):  # a locked sweep id (UserError, exit 3) or a crash
        raise out
    return {**out, "sweep_id": sid, "already": False, "seconds": time.perf_counter() - t0}
