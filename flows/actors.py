"""Ray actors own a trial's device state. The Prefect task that drives one only waits and reports."""
from __future__ import annotations

import logging
import os

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

    def train(self, cfg, storage, sweep_id: str, ev=None, es=None) -> dict:
        from gan_tasks.training.trial import run_trial

        self.progress_ = (0, 0, 0.0)  # a pooled actor must not report its previous trial's progress
        node = ray.get_runtime_context().get_node_id()
        hook = None
        if ev is not None and ev.eval_every:  # quality-over-steps rows in evaluations/
            from gan_tasks.evaluation.evaluate import on_eval

            hook = on_eval(storage, sweep_id, ev, es)  # es: early_stop rungs, decided in the hook
        return run_trial(cfg, storage, sweep_id, _device(), self._on_progress, node, hook,
                         ev.eval_every if hook else 0)

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

    def __init__(self, size: int, gpus: float, cpus: float, restarts: int = 2):
        import queue

        self.actors = [make_actor(gpus, cpus, restarts) for _ in range(size)]
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
        self.shutdown()


def start_local_ray(**kwargs) -> None:
    """A local Ray whose every server (GCS, raylet, workers, agents) listens on 127.0.0.1 only.

    Ray 2.60 resolves `_node_ip_address="127.0.0.1"` back to the machine's routable address and then
    binds its gRPC servers to all interfaces. It keeps the loopback address only when it believes it
    is not running as a cluster (its macOS/Windows default), so for the duration of ray.init we let
    it believe that; the processes it starts get the address as arguments. A cluster connection
    (`--ray-address`) never goes through here.
    """
    from ray._private import ray_constants

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
    cluster_mode = ray_constants.ENABLE_RAY_CLUSTER
    ray_constants.ENABLE_RAY_CLUSTER = False
    try:
        ray.init(**kwargs)
    finally:
        ray_constants.ENABLE_RAY_CLUSTER = cluster_mode  # a later ray.init(address=...) resolves as usual
        auth_log.setLevel(level)


def slots(gpus: float, cpus: float, limit: int) -> int:
    """How many trials the cluster can run at once with this request (at least 1)."""
    total = ray.cluster_resources()
    n = int(total.get("CPU", 1) // cpus) if cpus else limit
    if gpus:
        n = min(n, int(total.get("GPU", 0) // gpus))
    return max(1, min(n, limit))


def make_actor(gpus: float, cpus: float, restarts: int = 2):
    """An actor with the trial's resource request; Ray restarts it (and retries the call) if its
    process dies, and the retried train() resumes from the latest checkpoint."""
    return TrialActor.options(num_gpus=gpus, num_cpus=cpus, max_concurrency=2, max_restarts=restarts,
                              max_task_retries=restarts).remote(int(cpus) or 1)
