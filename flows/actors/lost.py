"""A trial actor lost with its node: how the driver tells (the actor's call fails, or it stays unplaced), and
stops it for good before its trial is sent to another actor, so that a trial never trains twice at once.

When a node dies (kill -9 of its raylet, a spot instance reclaimed), the calls in flight on its actors fail
within seconds (ActorUnavailableError: Ray's retries meet a closed socket before the GCS has declared the
node dead) or, once the GCS has, the actor is RESTARTING and waits for room that the surviving nodes, busy
with their own trials, do not have: Ray alone would record the trial failed, or wait forever
(docs/reliability.md). train.py re-sends such a trial, first in line, to another actor of the pool; it
resumes from its last checkpoint in storage.
"""
from __future__ import annotations

import time

import ray

from flows.actors.ray_patches import actor_state

RESEND_S = 300.0  # a lost trial waits this long for a live actor (a node to join) when none is left
MAX_RESENDS = 5  # re-sends of one trial: a trial that brings down every actor it touches is failed
STUCK_S = 60.0  # an actor that has not been alive this long (restarting, unplaced) counts as lost


class ActorLost(RuntimeError):
    """The trial's actor has not been alive for STUCK_S seconds."""


class Watch:
    """Called when an actor's progress call times out: raises ActorLost once it has stayed not ALIVE too long."""

    def __init__(self, stuck_s: float = STUCK_S):
        self.stuck_s, self.since = stuck_s, None

    def check(self, actor) -> None:
        if actor_state(actor) == "ALIVE":
            self.since = None
            return
        self.since = self.since or time.monotonic()
        if time.monotonic() - self.since > self.stuck_s:
            raise ActorLost(f"its actor has not been alive for {self.stuck_s:.0f} s (node lost, no room to restart)")


def stop(actor, wait_s: float = 60.0) -> bool:
    """Kill the actor without restart and wait until the GCS has it DEAD: nothing of it trains on. False if
    it is not dead within wait_s (its trial is then not re-sent)."""
    ray.kill(actor, no_restart=True)
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        if actor_state(actor) in ("DEAD", ""):
            return True
        time.sleep(0.5)
    return False


def resendable(e: BaseException) -> bool:
    """A failure that lost the actor, not one of the trial's own making (an error in the actor's __init__)."""
    if isinstance(e, ActorLost):
        return True
    return isinstance(e, ray.exceptions.RayActorError) and not e.actor_init_failed
