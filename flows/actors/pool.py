"""The sweep's trial actors: how many fit (slots), the pool they are lent from, and its name."""
from __future__ import annotations

import contextlib
from typing import Any

import ray

from flows.actors.trial_actor import make_actor


class ActorPool:
    """A fixed set of TrialActors shared by a sweep's trials and evaluations.

    Starting an actor costs seconds (a fresh process importing torch); a pool pays that once per
    slot, not once per trial. Threads borrow an actor, use it, and give it back.
    """

    def __init__(self, size: int, gpus: float, cpus: float, restarts: int = 2, name: str | None = None):
        import queue

        # name: actors named <name>-<i>, taken over if they exist already (`gansweep run` starts them
        # while the Prefect API starts, before the flow that uses them; WarmActors keeps them between
        # sweeps: flows/actors/warm.py). Named actors belong to whoever named them: leaving `with`, they run on.
        self.actors = [make_actor(gpus, cpus, restarts, name and f"{name}-{i}") for i in range(size)]
        self.owned = name is None
        self._free: "queue.Queue" = queue.Queue()
        for a in self.actors:
            self._free.put(a)

    def borrow(self):
        return self._free.get()

    def give_back(self, actor) -> None:
        self._free.put(actor)

    @contextlib.contextmanager
    def lease(self):
        """An actor of the pool for the duration of `with`, given back whatever happens."""
        actor = self.borrow()
        try:
            yield actor
        finally:
            self.give_back(actor)

    def shutdown(self) -> None:
        for a in self.actors:
            ray.kill(a)

    def __enter__(self) -> "ActorPool":
        return self

    def __exit__(self, *exc) -> None:
        if self.owned:
            self.shutdown()


def slots(gpus: float, cpus: float, limit: int) -> int:
    """How many trials the cluster can run at once with this request (at least 1)."""
    total = ray.cluster_resources()
    n = int(total.get("CPU", 1) // cpus) if cpus else limit
    if gpus:
        n = min(n, int(total.get("GPU", 0) // gpus))
    return max(1, min(n, limit))


def pool_name(sweep_id: str) -> str:
    """A name for one run's pooled actors: unique, so that no other run (or an earlier run of the
    same sweep id, whose killed actors may still hold their names a moment) is taken over."""
    import uuid

    return f"gansweep-{sweep_id}-{uuid.uuid4().hex[:12]}"


def sweep_pool(resources: Any, n_trials: int, name: str | None = None) -> ActorPool:
    """A sweep's actors, one per slot (a process each, importing torch: seconds, paid once per slot
    and started before the sweep prepares); named: the ones `gansweep run` started early, taken over."""
    n = slots(resources.gpus_per_trial, resources.cpus_per_trial, min(resources.max_parallel or n_trials, n_trials))
    return ActorPool(n, resources.gpus_per_trial, resources.cpus_per_trial, name=name)
