"""`gansweep run`'s start-up, overlapped: the temporary Prefect API, Ray and the trial actors start
side by side instead of one after the other.

Without PREFECT_API_URL a flow run starts Prefect's temporary API server (a subprocess: seconds) on
its first API call, then the flow starts Ray (seconds), then the actors (a process each importing
torch: seconds). Here the server starts in a thread while the main thread imports the flow, starts
Ray and the sweep's actors; the flow then finds the server up (Prefect keeps one per process) and
takes the actors over by the name it is given (`actors`, flows/actors.py: pool_name). Nothing else changes: same server,
same Ray, same actors, the flow run and its task runs as before.
"""
from __future__ import annotations

import threading


class WarmStart:
    def __init__(self):
        """Starts the temporary Prefect API in a thread, if this run will use one."""
        from prefect.settings import PREFECT_API_URL, PREFECT_SERVER_EPHEMERAL_ENABLED

        self.started_ray, self._pool, self.actors = False, None, None
        self._api = None
        if not PREFECT_API_URL.value() and PREFECT_SERVER_EPHEMERAL_ENABLED.value():
            self._api = threading.Thread(target=_start_api, name="gansweep-prefect-api", daemon=True)
            self._api.start()

    def start_ray(self, sweep, n_trials: int, sweep_id: str, ray_address: str | None) -> None:
        """Ray, and the sweep's actors on a local Ray (a cluster's start when the flow asks for them)."""
        from flows.actors import ensure_ray

        self.started_ray = ensure_ray(ray_address)
        if not ray_address:
            from flows.actors import pool_name
            from flows.sweep import sweep_pool

            self.actors = pool_name(sweep_id)  # the flow's `actors` parameter
            self._pool = sweep_pool(sweep, n_trials, self.actors)  # held here until the flow takes them over

    def wait(self) -> None:
        """Until the API server answers (or failed: the flow's own first call then says why)."""
        if self._api is not None:
            self._api.join()

    def close(self) -> None:
        import ray

        if self.started_ray and ray.is_initialized():
            ray.shutdown()


def _start_api() -> None:
    from prefect.server.api.server import SubprocessASGIServer

    try:
        SubprocessASGIServer().start()  # the instance a flow's get_client() uses (one per port: None)
    except Exception:  # noqa: BLE001 - the flow's get_client() starts it again and reports the error
        pass
