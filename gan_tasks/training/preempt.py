"""A preemption notice (a spot instance's SIGTERM) in a trial actor's process: every trial it runs checkpoints
at its next step boundary and returns `preempted`, then the process exits; the sweep resumes those trials on
another node from that checkpoint, so no completed step is lost (docs/reliability.md).

Bound: a trial notices the notice after the step in progress and then writes one checkpoint (its metrics
and state, synchronously). For the built-in models here that is milliseconds (~0.01-0.05 s measured on
2 shared cores, tests/test_preemption.py); whatever happens, the process exits BOUND_S after the notice,
the last checkpoint written before it then being the one resumed. A process that runs no trial exits at once.
"""
from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from typing import Iterator

BOUND_S = 10.0  # notice -> process gone, at the latest
EXIT_DELAY_S = 0.5  # after the last trial returned: time for its answer to reach the driver

_notice = threading.Event()
_lock = threading.Lock()
_running = 0
_noticed_at: float | None = None


class Preempted(RuntimeError):
    """Raised at a step boundary after the notice; the trial checkpoints and its row says `preempted`."""

    def __init__(self, step: int):
        super().__init__(f"preempted (SIGTERM) at step {step}; checkpointed, resumes on another node")
        self.step = step


def install() -> bool:
    """The SIGTERM handler for this process (a trial actor's, from its main thread); False elsewhere."""
    if threading.current_thread() is not threading.main_thread():
        return False
    signal.signal(signal.SIGTERM, _on_sigterm)
    return True


def _on_sigterm(signum, frame) -> None:  # noqa: ARG001
    global _noticed_at
    _noticed_at = time.monotonic()
    _notice.set()
    with _lock:
        idle = _running == 0
    if idle:
        os._exit(0)
    threading.Thread(target=_exit_after, args=(BOUND_S,), daemon=True, name="gansweep-preempt-bound").start()


def _exit_after(seconds: float) -> None:
    time.sleep(seconds)
    os._exit(0)


def requested() -> bool:
    """Whether a notice came: a trial checks at every step boundary (an Event read: nanoseconds)."""
    return _notice.is_set()


def since_notice() -> float:
    """Seconds since the notice (0 without one)."""
    return time.monotonic() - _noticed_at if _noticed_at is not None else 0.0


@contextlib.contextmanager
def running() -> Iterator[None]:
    """Around a trial's training: after a notice, the process exits once the last such block has left."""
    global _running
    with _lock:
        _running += 1
    try:
        yield
    finally:
        with _lock:
            _running -= 1
            last = _running == 0
        if last and _notice.is_set():
            threading.Thread(target=_exit_after, args=(EXIT_DELAY_S,), daemon=True,
                             name="gansweep-preempt-exit").start()
