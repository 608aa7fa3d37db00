"""The Ray a sweep runs on: a local one of its own (loopback only, dashboard off) or a cluster it joins;
started and stopped in one place (ray_session)."""
from __future__ import annotations

import contextlib
from typing import Iterator

import ray

from flows.actors.ray_patches import local_ray, loopback_cluster


def start_local_ray(**kwargs) -> None:
    """A local Ray whose every server (GCS, raylet, workers, agents) listens on 127.0.0.1 only."""
    kwargs.setdefault("include_dashboard", False)  # no web UI unless someone asks for one
    # Ray renices its workers (+15) to keep its own daemons responsive on busy cluster nodes. On a
    # laptop the trials *are* the work: at +15 they lose the CPU to any other process (bench P2).
    # A cluster keeps its own setting.
    kwargs.setdefault("_system_config", {"worker_niceness": 0})
    with local_ray():
        ray.init(**kwargs)


def connect_ray(address: str, **kwargs) -> None:
    """Join an existing cluster as a driver. A cluster on this machine's loopback (127.x, localhost:
    `ray start --node-ip-address 127.0.0.1`) is joined on loopback: resolved to the routable address,
    the driver would look for the GCS where it does not listen and wait forever."""
    host = address.removeprefix("ray://").rsplit(":", 1)[0]
    with loopback_cluster() if host.startswith("127.") or host == "localhost" else contextlib.nullcontext():
        ray.init(address=address, **kwargs)


def join_cluster(address: str, runtime_env: dict | None = None) -> None:
    """Connect this process to an existing cluster as the sweep's driver. runtime_env: the job's code
    (flows/actors/shipping.py: this checkout and the sweep's plugins); by default this checkout's."""
    import flows
    import gan_tasks

    # Ship this checkout's code with the job: workers need the dependencies, not our package.
    connect_ray(address, log_to_driver=True, runtime_env=runtime_env or {"py_modules": [gan_tasks, flows]})


def ensure_ray(address: str | None, log_to_driver: bool = True, runtime_env: dict | None = None) -> bool:
    """Connect to a cluster or start a local Ray; True if we started it (and so must stop it)."""
    if ray.is_initialized():
        return False
    if address:
        join_cluster(address, runtime_env)
    else:
        start_local_ray(log_to_driver=log_to_driver)  # this run's own Ray: loopback only, dashboard off
    return True


@contextlib.contextmanager
def ray_session(address: str | None = None, log_to_driver: bool = True,
                runtime_env: dict | None = None) -> Iterator[bool]:
    """A Ray for the duration of `with`: the one running, else a cluster joined (with runtime_env) or a
    local one started, and then stopped at the end. Yields whether it was started here."""
    started = ensure_ray(address, log_to_driver, runtime_env)
    try:
        yield started
    finally:
        if started and ray.is_initialized():
            ray.shutdown()
