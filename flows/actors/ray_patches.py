"""Every change this project makes to Ray's internals, in one place, for the Ray version it was written
for (RAY_VERSION, the pin in pyproject.toml). Another Ray version gets a warning: these patches reach
into private modules that may have moved."""
from __future__ import annotations

import contextlib
import logging
import warnings

import ray

RAY_VERSION = "2.60.0"


def check_version() -> None:
    if ray.__version__ != RAY_VERSION:
        warnings.warn(f"flows/actors/ray_patches.py was written for Ray {RAY_VERSION}, this is Ray "
                      f"{ray.__version__}: check its patches (loopback addresses, agent port, auth log)",
                      stacklevel=3)


@contextlib.contextmanager
def _loopback_addresses():
    """While active, Ray keeps 127.0.0.1 as this node's address instead of swapping in the routable one.

    Ray 2.60 resolves a loopback address back to the machine's routable address and then binds its
    gRPC servers to all interfaces. It keeps the loopback address only when it believes it is not
    running as a cluster (its macOS/Windows default), so for the duration of ray.init we let it
    believe that; the processes it starts get the address as arguments.
    """
    from ray._private import ray_constants

    cluster_mode = ray_constants.ENABLE_RAY_CLUSTER
    ray_constants.ENABLE_RAY_CLUSTER = False
    try:
        yield
    finally:
        ray_constants.ENABLE_RAY_CLUSTER = cluster_mode  # a later ray.init(address=...) resolves as usual


@contextlib.contextmanager
def _any_free_agent_port():
    """While active, a new local Ray's dashboard agent serves HTTP on a port the OS picks.

    Ray's default is the fixed port 52365 and ray.init cannot change it: with another local Ray on the
    machine (a second sweep, a notebook, a benchmark's own Ray) the agent retries for seconds, then runs
    without its HTTP server, and ray.init waits for it (bench/README.md, start-up profile). Port 0 is
    Ray's own "dynamic port" case (ray/dashboard/agent.py).
    """
    from ray._private.parameter import RayParams

    init = RayParams.__init__

    def free_port_init(self, *args, **kwargs):
        kwargs.setdefault("dashboard_agent_listen_port", 0)
        init(self, *args, **kwargs)

    RayParams.__init__ = free_port_init
    try:
        yield
    finally:
        RayParams.__init__ = init


@contextlib.contextmanager
def _quiet_auth_warning():
    """Ray turns token authentication on for a new local cluster (good: we keep it) and says so in a WARNING
    that asks the user to opt out; nothing to act on, so that one logger is quiet while Ray starts."""
    auth_log = logging.getLogger("ray._private.authentication.authentication_token_setup")
    level = auth_log.level
    auth_log.setLevel(logging.ERROR)
    try:
        yield
    finally:
        auth_log.setLevel(level)


@contextlib.contextmanager
def local_ray():
    """While active, ray.init starts a local Ray on loopback only, its agent on a free port, quietly."""
    check_version()
    with _loopback_addresses(), _any_free_agent_port(), _quiet_auth_warning():
        yield


@contextlib.contextmanager
def loopback_cluster():
    """While active, ray.init(address=127.x...) joins a loopback cluster on loopback."""
    check_version()
    with _loopback_addresses():
        yield


def loopback_start() -> None:
    """For the rest of this process, `ray start --node-ip-address 127.x` keeps that address (and so every
    server on loopback): Ray 2.60 resolves a loopback address to the machine's routable one first
    (bench/loopback_cluster.py runs Ray's command line after this)."""
    from ray._private import services

    check_version()
    resolve = services.resolve_ip_for_localhost
    services.resolve_ip_for_localhost = lambda host: host if host.startswith("127.") else resolve(host)


def actor_state(actor) -> str:
    """The GCS's state of an actor: ALIVE, RESTARTING, PENDING_CREATION, DEPENDENCIES_UNREADY, DEAD ("" unknown).
    Read from the GCS directly (ray.util.state needs the dashboard, which our clusters run without)."""
    from ray._private.state import state

    return state.actor_table(actor._actor_id.hex()).get("State", "")
