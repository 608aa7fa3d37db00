"""A sweep lock in storage: one run per sweep id at a time, with an owner and an expiry.

The lock is a small JSON object at sweeps/<id>/lock.json. A run renews it every TTL/3 seconds;
a lock whose expiry has passed belongs to a run that died and may be taken over. Object stores
offer no atomic create-if-absent to every client, so two runs starting in the same second could
both win; the lock guards against the realistic case (a second nightly run while one is going).
"""
from __future__ import annotations

import json
import os
import socket
import threading
import time
import uuid

from gan_tasks.storage import Storage

TTL_SECONDS = 300.0  # a crashed run blocks its sweep id for at most 5 minutes


class SweepLocked(RuntimeError):
    pass


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
        except (ValueError, FileNotFoundError):
            return None

    def acquire(self) -> None:
        held = self.current()
        if held and held["owner"] != self.owner and held["expires_at"] > time.time():
            left = held["expires_at"] - time.time()
            raise SweepLocked(
                f"sweep {self.sweep_id} is already running (lock held by {held['owner']}, expires in {left:.0f} s); "
                f"wait for it to finish, or delete {self.storage.uri(*self.path)} if that run is dead")
        self._write()
        self._thread = threading.Thread(target=self._renew, daemon=True, name="sweep-lock")
        self._thread.start()

    def _renew(self) -> None:
        while not self._stop.wait(self.ttl / 3):
            self._write()

    def release(self) -> None:
        self._stop.set()
        held = self.current()
        if held and held["owner"] == self.owner:
            self.storage.rm(*self.path)

    def __enter__(self) -> "SweepLock":
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()
