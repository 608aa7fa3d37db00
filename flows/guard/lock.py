"""A sweep lock in storage: one run per sweep id at a time, with an owner and an expiry.

The lock is a small JSON object at sweeps/<id>/lock.json: {"owner": "host:pid:nonce", "expires_at": t}.
A run renews it every TTL/3 seconds. A lock is stale, and may be taken over, when its expiry has
passed (its run died somewhere) or when its owner is a process on this host that no longer exists
(a run killed a minute ago on this machine need not block its sweep id for the whole TTL).
Object stores offer no atomic create-if-absent to every client, so after writing we read the lock
back: of two runs starting in the same instant, the one whose write landed last wins and the other
stops. This guards against the realistic case (a second nightly run while one is going).
"""
from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
import uuid

from gan_tasks.data.storage import Storage
from gan_tasks.errors import UserError

TTL_SECONDS = 300.0  # a crashed run on another host blocks its sweep id for at most 5 minutes
log = logging.getLogger("gansweep.lock")


class SweepLocked(UserError, RuntimeError):
    """Another live run holds this sweep id: exit 3."""

    exit_code = 3


def _dead_here(owner: str) -> bool:
    """True if the owner ran on this host and its process is gone."""
    host, _, rest = owner.partition(":")
    pid = rest.partition(":")[0]
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return True
    except PermissionError:  # it exists, owned by another user
        return False
    return False


class SweepLock:
    def __init__(self, storage: Storage, sweep_id: str, ttl: float = TTL_SECONDS):
        self.storage, self.sweep_id, self.ttl = storage, sweep_id, ttl
        self.path = ("sweeps", sweep_id, "lock.json")
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _write(self) -> None:
        body = {"owner": self.owner, "expires_at": time.time() + self.ttl}
        self.storage.write_bytes(json.dumps(body).encode(), *self.path)

    def current(self) -> dict | None:
        if not self.storage.exists(*self.path):
            return None
        try:
            return json.loads(self.storage.read_bytes(*self.path))
        except (ValueError, FileNotFoundError):  # half-deleted or garbage: nobody holds it
            return None

    def _refuse(self, held: dict) -> None:
        left = held["expires_at"] - time.time()
        raise SweepLocked(
            f"sweep {self.sweep_id} is already running (lock held by {held['owner']}, expires in {left:.0f} s); "
            f"wait for it to finish, or delete {self.storage.uri(*self.path)} if that run is dead")

    def check(self) -> dict | None:
        """Refuse (SweepLocked) if a live run holds the sweep; else the stale lock to take over, or None.
        `gansweep run` asks this before Ray or Prefect start; acquire() asks again, race-safe."""
        held = self.current()
        if held and held["owner"] != self.owner:
            if held["expires_at"] > time.time() and not _dead_here(held["owner"]):
                self._refuse(held)
            return held
        return None

    def acquire(self) -> None:
        if stale := self.check():
            log.warning("sweep %s: taking over the stale lock of %s", self.sweep_id, stale["owner"])
        self._write()
        held = self.current()  # read back: a run that wrote after us owns it now
        if held and held["owner"] != self.owner:
            self._refuse(held)
        self._thread = threading.Thread(target=self._renew, daemon=True, name="sweep-lock")
        self._thread.start()

    def _renew(self) -> None:
        while not self._stop.wait(self.ttl / 3):
            try:
                self._write()
            except Exception as e:  # noqa: BLE001 - storage retries already waited; try again next round
                log.warning("sweep %s: could not renew the lock (%s); retrying in %.0f s", self.sweep_id, e,
                            self.ttl / 3)

    def release(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=5)
        held = self.current()
        if held and held["owner"] == self.owner:
            self.storage.rm(*self.path)

    def __enter__(self) -> "SweepLock":
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()
