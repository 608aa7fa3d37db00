"""The sweep's trial actors: how many fit (slots), the pool they are lent from, and its name."""
from __future__ import annotations

import contextlib
from typing import Any

import ray

from flows.actors.lost import stop
from flows.actors.trial_actor import make_actor


class NoActor(RuntimeError):
    """No actor of the pool was alive to take a trial for `seconds` (every node lost, none joined)."""


class ActorPool:
    """A fixed set of TrialActors shared by a sweep's trials and evaluations.

    Starting an actor costs seconds (a fresh process importing torch); a pool pays that once per
    slot, not once per trial. Threads borrow an actor, use it, and give it back. An actor lost with its
    node is retired (flows/actors/lost.py): stopped for good, and a replacement asked of Ray joins the pool
    once some node has room for it (a node added, or the autoscaler's replacement of a spot node).
    """

    def __init__(self, size: int, gpus: float, cpus: float, restarts: int = 2, name: str | None = None,
                 custom: dict | None = None):
        import threading

        # name: actors named <name>-<i>, taken over if they exist already (`gansweep run` starts them
        # while the Prefect API starts, before the flow that uses them; WarmActors keeps them between
        # sweeps: flows/actors/warm.py). Named actors belong to whoever named them: leaving `with`, they run on.
        self.request = (gpus, cpus, restarts, custom)
        self.actors = [make_actor(gpus, cpus, restarts, name and f"{name}-{i}", custom) for i in range(size)]
        self.owned = name is None
        self.replacements: list = []  # this pool's own: stopped with it, named or not
        self._free = list(self.actors)
        self._urgent = 0  # borrowers that go first: trials re-sent after their node was lost
        self._cond = threading.Condition()

    def borrow(self, first: bool = False, give_up_s: float | None = None):
        """The next free actor. first: before the others waiting (a trial resumed after a node loss);
        give_up_s: a NoActor once the pool has had no live actor for that long."""
        import time

        with self._cond:
            self._urgent += first
            since = None
            try:
                while not (self._free and (first or not self._urgent)):
                    self._cond.wait(1.0)
                    if give_up_s is not None and not self.actors:
                        since = since or time.monotonic()
                        if time.monotonic() - since > give_up_s:
                            raise NoActor(f"no node alive to run it for {give_up_s:.0f} s")
                    else:
                        since = None
                return self._free.pop(0)
            finally:
                self._urgent -= first

    def give_back(self, actor) -> None:
        with self._cond:
            if actor in self.actors:  # not retired meanwhile
                self._free.append(actor)
                self._cond.notify_all()

    @contextlib.contextmanager
    def lease(self, first: bool = False, give_up_s: float | None = None):
        """An actor of the pool for the duration of `with`, given back whatever happens."""
        actor = self.borrow(first, give_up_s)
        try:
            yield actor
        finally:
            self.give_back(actor)

    def retire(self, actor) -> bool:
        """Out of the pool for good (its node is gone), stopped (lost.stop: whether it is dead now); a
        replacement joins once Ray has placed it."""
        import threading

        with self._cond:
            if actor in self.actors:
                self.actors.remove(actor)
        dead = stop(actor)
        gpus, cpus, restarts, custom = self.request
        new = make_actor(gpus, cpus, restarts, None, custom)
        self.replacements.append(new)
        threading.Thread(target=self._join, args=(new,), daemon=True, name="gansweep-replacement").start()
        return dead

    def _join(self, actor) -> None:
        try:
            ray.get(actor.pid.remote())  # placed and started: some node had room
        except ray.exceptions.RayError:
            return  # stopped with the pool before any node took it
        with self._cond:
            self.actors.append(actor)
            self._free.append(actor)
            self._cond.notify_all()

    def shutdown(self) -> None:
        for a in {a._actor_id: a for a in self.actors + self.replacements}.values():
            ray.kill(a)

    def __enter__(self) -> "ActorPool":
        return self

    def __exit__(self, *exc) -> None:
        if self.owned:
            self.shutdown()
        else:
            for a in self.replacements:
                ray.kill(a)


def slots(gpus: float, cpus: float, limit: int, custom: dict | None = None) -> int:
    """How many trials the cluster can run at once with this request (at least 1)."""
    total = ray.cluster_resources()
    n = int(total.get("CPU", 1) // cpus) if cpus else limit
    for key, amount in [("GPU", gpus), *(custom or {}).items()]:
        if amount:
            n = min(n, int(total.get(key, 0) // amount))
    return max(1, min(n, limit))


def pool_name(sweep_id: str) -> str:
    """A name for one run's pooled actors: unique, so that no other run (or an earlier run of the
    same sweep id, whose killed actors may still hold their names a moment) is taken over."""
    import uuid

    return f"gansweep-{sweep_id}-{uuid.uuid4().hex[:12]}"


def sweep_pool(resources: Any, n_trials: int, name: str | None = None) -> ActorPool:
    """A sweep's actors, one per slot (a process each, importing torch: seconds, paid once per slot
    and started before the sweep prepares); named: the ones `gansweep run` started early, taken over."""
    n = slots(resources.gpus_per_trial, resources.cpus_per_trial, min(resources.max_parallel or n_trials, n_trials),
              resources.custom)
    return ActorPool(n, resources.gpus_per_trial, resources.cpus_per_trial, name=name, custom=resources.custom)
