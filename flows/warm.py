"""`gansweep run`'s start-up, overlapped: the temporary Prefect API, Ray and the trial actors start
side by side instead of one after the other.

Without PREFECT_API_URL a flow run starts Prefect's temporary API server (a uvicorn subprocess) on
its first API call, then the flow starts Ray, then the actors (a process each importing torch).
Here the server is spawned first thing, with the command line and environment Prefect gives it
(`SubprocessASGIServer`, prefect/server/api/server.py), and the run points PREFECT_API_URL at it;
while it starts, the main thread starts Ray and the sweep's actors; the flow takes the actors over by
the name it is given (`actors`, flows/actors.py: pool_name). Starting it ourselves rather than through
Prefect's class spares the driver importing Prefect's server code (~3 s of CPU, on the cores the
server and Ray start on) before the spawn. Same server, same flow run and task runs as before; it
stops at exit, after Prefect's own exit handlers have sent their last logs and events.

WarmActors: sweeps run one after another in one process (a notebook, `gansweep bench`) share their
trial actors instead of each starting its own.
"""
from __future__ import annotations

import atexit
import os
import random
import socket
import subprocess
import sys
import time
import urllib.request
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from flows.actors import ActorPool

TEMPORARY_API = "GANSWEEP_TEMPORARY_API"  # the API URL of the temporary server this run started


def on_temporary_api() -> bool:
    """Whether Prefect talks to a temporary API (ours, or Prefect's own when no API URL is set)."""
    from prefect.settings import PREFECT_API_URL

    url = PREFECT_API_URL.value()
    return not url or url == os.environ.get(TEMPORARY_API)


class WarmStart:
    def __init__(self, say=print):
        """Spawns the temporary Prefect API, if this run will use one."""
        self.started_ray, self._pool, self.actors = False, None, None
        self._server = start_temporary_api(say)

    def start_ray(self, sweep, n_trials: int, sweep_id: str, ray_address: str | None) -> None:
        """Ray, and the sweep's actors on a local Ray (a cluster's start when the flow asks for them)."""
        from flows.actors import ensure_ray

        self.started_ray = ensure_ray(ray_address)
        if not ray_address:
            from flows.actors import pool_name
            from flows.sweep import sweep_pool

            self.actors = pool_name(sweep_id)  # the flow's `actors` parameter
            self._pool = sweep_pool(sweep, n_trials, self.actors)  # the flow borrows them; stopped in close()

    def wait(self) -> None:
        """Until the API server answers."""
        if self._server is not None:
            self._server.wait()

    def close(self) -> None:
        import ray

        if self._pool is not None and ray.is_initialized():
            self._pool.shutdown()
        if self.started_ray and ray.is_initialized():
            ray.shutdown()


class WarmActors:
    """Trial actors kept between sweeps run one after another in this process (a notebook, a script,
    `gansweep bench`): only the first sweep pays their start, a process each importing torch and
    torch._dynamo (~5 s of CPU each on 2 cores), and each actor's first trial no longer shares its CPU
    with those imports.

        ray.init()  # or flows.actors.start_local_ray(): a Ray that outlives the sweeps
        with WarmActors() as warm:
            for cfg in configs:
                sweep_flow(cfg, storage_url, actors=warm.for_sweep(cfg))

    One sweep at a time: a sweep borrows every actor of its resource shape. Actors of a shape the next
    sweep does not ask for are stopped before its own start, so they never hold the CPUs/GPUs it needs.
    Leaving `with` stops them all. A sweep that starts its own Ray (none running) stops it at its end,
    actors included: hence the check in for_sweep."""

    def __init__(self):
        import uuid

        self.prefix = f"gansweep-warm-{uuid.uuid4().hex[:12]}"
        self._pools: dict[tuple[float, float], "ActorPool"] = {}

    def for_sweep(self, config) -> str:
        """The `actors` name to pass to sweep_flow for this sweep (a dict as sweep_flow takes, or a
        SweepConfig); its actors are started here if this context has none of its shape yet."""
        import ray

        from flows.sweep import sweep_pool
        from gan_tasks.config import SweepConfig, expand_grid, parse_config

        sweep = config if isinstance(config, SweepConfig) else parse_config(config)  # bad input: before any actor
        if not ray.is_initialized():
            raise RuntimeError("WarmActors needs a Ray that outlives the sweeps: call ray.init() (or "
                               "flows.actors.start_local_ray()) before for_sweep")
        res = sweep.resources
        shape = (res.gpus_per_trial, res.cpus_per_trial)
        for other in [s for s in self._pools if s != shape]:
            self._pools.pop(other).shutdown()
        name = f"{self.prefix}-g{shape[0]:g}-c{shape[1]:g}"
        pool = sweep_pool(sweep, len(expand_grid(sweep)), name)  # existing actors of that name taken over
        if shape not in self._pools or len(pool.actors) > len(self._pools[shape].actors):
            self._pools[shape] = pool  # these handles keep the actors alive (Ray stops unreferenced ones)
        return name

    def close(self) -> None:
        import ray

        pools, self._pools = list(self._pools.values()), {}
        if ray.is_initialized():
            for pool in pools:
                pool.shutdown()

    def __enter__(self) -> "WarmActors":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def start_temporary_api(say=print) -> "_TemporaryAPI | None":
    """Prefect's temporary API, spawned now, when no PREFECT_API_URL is set (None otherwise)."""
    from prefect.settings import PREFECT_API_URL, PREFECT_SERVER_EPHEMERAL_ENABLED

    if PREFECT_API_URL.value() or not PREFECT_SERVER_EPHEMERAL_ENABLED.value():
        return None
    server = _TemporaryAPI()
    say(f"temporary Prefect API on {server.address} (no PREFECT_API_URL set; it ends with this run)")
    return server


class _TemporaryAPI:
    """Prefect's temporary API server, as Prefect starts it, on a free local port; this process's
    Prefect settings point at it from now on."""

    def __init__(self):
        from prefect.settings import PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS

        self.timeout = PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS.value()
        os.environ.setdefault("PREFECT_UI_URL", "")  # it serves no UI: no "View at" link to a dead page
        self._spawn()
        atexit.register(self.stop)  # registered before Prefect's log and event workers: runs after them

    def _spawn(self) -> None:
        """The server on a free port, and this process's Prefect settings pointing at it."""
        import prefect
        from prefect.context import refresh_global_settings_context
        from prefect.settings import get_current_settings

        self.port = _free_port()
        self.address, self.api_url = f"http://127.0.0.1:{self.port}", f"http://127.0.0.1:{self.port}/api"
        env = {**os.environ, **get_current_settings().to_environment_variables(exclude_unset=True),
               "PREFECT_UI_ENABLED": "0", "PREFECT__SERVER_EPHEMERAL": "1", "PREFECT__SERVER_FINAL": "1"}
        env.pop("PREFECT_API_URL", None)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "--app-dir", str(prefect.__module_path__.parent), "--factory",
             "prefect.server.api.server:create_app", "--host", "127.0.0.1", "--port", str(self.port),
             "--log-level", "error", "--lifespan", "on"], env=env)
        os.environ["PREFECT_API_URL"] = os.environ[TEMPORARY_API] = self.api_url
        refresh_global_settings_context()  # Prefect read its settings at import

    def wait(self) -> None:
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            if self.process.poll() == 3:  # uvicorn: the port was taken meanwhile. Another one, as Prefect does
                self._spawn()
                continue
            if self.process.poll() is not None:
                raise RuntimeError(f"Prefect's temporary API server exited with code {self.process.returncode} "
                                   f"before answering on {self.address} (its errors are above)")
            try:
                with urllib.request.urlopen(f"{self.api_url}/health", timeout=2) as r:
                    if r.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"Prefect's temporary API server did not answer on {self.address} within "
                           f"{self.timeout} s (PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS)")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def _free_port() -> int:
    """A free port in 8000-8999, as Prefect picks one: outside the kernel's range for port 0, from which
    Ray's processes take theirs while this server is still importing (before it binds)."""
    for port in random.sample(range(8000, 9000), 50):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
                return port
            except OSError:
                continue
    raise RuntimeError("no free port in 8000-8999 for Prefect's temporary API server")
