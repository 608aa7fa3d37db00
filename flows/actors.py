"""Ray actors own a trial's device state. The Prefect task that drives one only waits and reports."""
from __future__ import annotations

import contextlib
import importlib
import logging
import os
import threading

import ray


def _device() -> str:
    import torch

    # Ray sets CUDA_VISIBLE_DEVICES to the GPUs it assigned; no assignment means CPU.
    if ray.get_gpu_ids() and torch.cuda.is_available():
        return "cuda:0"
    return "cpu"


@ray.remote
class TrialActor:
    """Trains one trial. Threaded (max_concurrency=2) so progress() answers while train() runs."""

    def __init__(self, num_threads: int):
        import torch

        torch.set_num_threads(max(1, num_threads))  # one trial must not oversubscribe its CPUs
        import gan_tasks.training.trial  # noqa: F401 - import now, while the sweep prepares, not in the first trial
        # The first torch optimiser imports torch._dynamo: 3 s here, paid by each actor's first trial.
        # Imported beside the sweep's start-up instead (a trial that needs it sooner waits on the import lock).
        threading.Thread(target=importlib.import_module, args=("torch._dynamo",), daemon=True).start()
        self.progress_ = (0, 0, 0.0)

    def pid(self) -> int:
        return os.getpid()

    def peak_rss_mb(self) -> float:
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB

    def progress(self) -> tuple[int, int, float]:
        return self.progress_

    def _on_progress(self, step: int, steps: int, rate: float) -> None:
        self.progress_ = (step, steps, rate)

    def train(self, cfg, storage, sweep_id: str, ev=None, es=None, evaluate: bool = False) -> dict:
        """Train (or resume) one trial; with `evaluate`, a trial that ends done (completed or stopped)
        is evaluated here at once, in the same call: no second task run, no second round trip, its
        data still cached in this process. An evaluation error is returned in `evaluation_error`."""
        from gan_tasks.training.trial import run_trial

        self.progress_ = (0, 0, 0.0)  # a pooled actor must not report its previous trial's progress
        node = ray.get_runtime_context().get_node_id()
        hook = None
        if ev is not None and ev.eval_every:  # quality-over-steps rows in eval_every/
            from gan_tasks.evaluation.evaluate import on_eval

            hook = on_eval(storage, sweep_id, ev, es)  # es: early_stop rungs, decided in the hook
        row = run_trial(cfg, storage, sweep_id, _device(), self._on_progress, node, hook,
                        ev.eval_every if hook else 0)
        from gan_tasks.data.schema import DONE

        if evaluate and ev is not None and row["status"] in DONE:
            try:
                self.evaluate(cfg, storage, sweep_id, ev)
            except Exception as e:  # noqa: BLE001 - the task marks the trial failed, the sweep goes on
                row = {**row, "evaluation_error": f"{type(e).__name__}: {e}"}
        return row

    def train_packed(self, cfgs: list, storage, sweep_id: str) -> list[dict]:
        from gan_tasks.training.packing import run_packed

        self.progress_ = (0, 0, 0.0)
        node = ray.get_runtime_context().get_node_id()
        return run_packed(cfgs, storage, sweep_id, _device(), self._on_progress, node)

    def evaluate(self, cfg, storage, sweep_id: str, ev) -> list[dict]:
        from gan_tasks.evaluation.evaluate import evaluate_trial

        return evaluate_trial(cfg, storage, sweep_id, ev, _device())


class ActorPool:
    """A fixed set of TrialActors shared by a sweep's trials and evaluations.

    Starting an actor costs seconds (a fresh process importing torch); a pool pays that once per
    slot, not once per trial. Threads borrow an actor, use it, and give it back.
    """

    def __init__(self, size: int, gpus: float, cpus: float, restarts: int = 2, name: str | None = None):
        import queue

        # name: actors named <name>-<i>, taken over if they exist already (`gansweep run` starts them
        # while the Prefect API starts, before the flow that uses them; WarmActors keeps them between
        # sweeps: flows/warm.py). Named actors belong to whoever named them: leaving `with`, they run on.
        self.actors = [make_actor(gpus, cpus, restarts, name and f"{name}-{i}") for i in range(size)]
        self.owned = name is None
        self._free: "queue.Queue" = queue.Queue()
        for a in self.actors:
            self._free.put(a)

    def borrow(self):
        return self._free.get()

    def give_back(self, actor) -> None:
        self._free.put(actor)

    def shutdown(self) -> None:
        for a in self.actors:
            ray.kill(a)

    def __enter__(self) -> "ActorPool":
        return self

    def __exit__(self, *exc) -> None:
        if self.owned:
            self.shutdown()


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
    machine (a second sweep, a notebook, a benchmark's own Ray) the agent retries for 4.4 s, then runs
    without its HTTP server, and ray.init waits for it (measured: 6.4 s instead of 2.4 s). Port 0 is
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


def start_local_ray(**kwargs) -> None:
    """A local Ray whose every server (GCS, raylet, workers, agents) listens on 127.0.0.1 only."""
    kwargs.setdefault("include_dashboard", False)  # no web UI unless someone asks for one
    # Ray renices its workers (+15) to keep its own daemons responsive on busy cluster nodes. On a
    # laptop the trials *are* the work: at +15 they lose the CPU to any other process and train at
    # half the speed of a plain PyTorch loop (bench P2). A cluster keeps its own setting.
    kwargs.setdefault("_system_config", {"worker_niceness": 0})
    # Ray 2.60 turns token authentication on for a new local cluster (good: we keep it) and says so
    # in a WARNING that asks the user to opt out; nothing to act on, so that one logger is quiet here.
    auth_log = logging.getLogger("ray._private.authentication.authentication_token_setup")
    level = auth_log.level
    auth_log.setLevel(logging.ERROR)
    try:
        with _loopback_addresses(), _any_free_agent_port():
            ray.init(**kwargs)
    finally:
        auth_log.setLevel(level)


def connect_ray(address: str, **kwargs) -> None:
    """Join an existing cluster as a driver. A cluster on this machine's loopback (127.x, localhost:
    `ray start --node-ip-address 127.0.0.1`) is joined on loopback: resolved to the routable address,
    the driver would look for the GCS where it does not listen and wait forever."""
    host = address.removeprefix("ray://").rsplit(":", 1)[0]
    if host.startswith("127.") or host == "localhost":
        with _loopback_addresses():
            ray.init(address=address, **kwargs)
    else:
        ray.init(address=address, **kwargs)


def join_cluster(address: str) -> None:
    """Connect this process to an existing cluster as the sweep's driver."""
    import flows
    import gan_tasks

    # Ship this checkout's code with the job: workers need the dependencies, not our package.
    connect_ray(address, log_to_driver=True, runtime_env={"py_modules": [gan_tasks, flows]})


def slots(gpus: float, cpus: float, limit: int) -> int:
    """How many trials the cluster can run at once with this request (at least 1)."""
    total = ray.cluster_resources()
    n = int(total.get("CPU", 1) // cpus) if cpus else limit
    if gpus:
        n = min(n, int(total.get("GPU", 0) // gpus))
    return max(1, min(n, limit))


def make_actor(gpus: float, cpus: float, restarts: int = 2, name: str | None = None):
    """An actor with the trial's resource request; Ray restarts it (and retries the call) if its
    process dies, and the retried train() resumes from the latest checkpoint. A named one is the
    existing actor of that name, if there is one."""
    named = {"name": name, "get_if_exists": True} if name else {}
    return TrialActor.options(num_gpus=gpus, num_cpus=cpus, max_concurrency=2, max_restarts=restarts,
                              max_task_retries=restarts, **named).remote(int(cpus) or 1)


def pool_name(sweep_id: str) -> str:
    """A name for one run's pooled actors: unique, so that no other run (or an earlier run of the
    same sweep id, whose killed actors may still hold their names a moment) is taken over."""
    import uuid

    return f"gansweep-{sweep_id}-{uuid.uuid4().hex[:12]}"


def ensure_ray(address: str | None) -> bool:
    """Connect to a cluster or start a local Ray; True if we started it (and so must stop it)."""
    if ray.is_initialized():
        return False
    if address:
        join_cluster(address)
    else:
        start_local_ray(log_to_driver=True)  # this run's own Ray: loopback only, dashboard off
    return True
