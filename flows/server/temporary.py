"""Prefect's temporary API server, started by us rather than by Prefect's first API call.

Without PREFECT_API_URL a flow run starts Prefect's temporary API server (a uvicorn subprocess) on
its first API call. `gansweep run` spawns it first thing instead, with the command line and
environment Prefect gives it (`SubprocessASGIServer`, prefect/server/api/server.py), and points
PREFECT_API_URL at it; while it starts, the run starts Ray and the sweep's actors (flows/run/launch.py).
Starting it ourselves rather than through Prefect's class spares the driver importing Prefect's
server code (seconds of CPU; bench/README.md) before the spawn. Same server, same flow run and task runs as before; it
is killed at exit, after Prefect's own exit handlers have sent their last logs and events (SIGKILL: its
database ends with the run; its errors go to a file, shown only if it fails to start).
"""
from __future__ import annotations

import atexit
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

from flows.guard import interrupt

TEMPORARY_API = "GANSWEEP_TEMPORARY_API"  # the API URL of the temporary server this run started


def on_temporary_api() -> bool:
    """Whether Prefect talks to a temporary API (ours, or Prefect's own when no API URL is set)."""
    from prefect.settings import PREFECT_API_URL

    url = PREFECT_API_URL.value()
    return not url or url == os.environ.get(TEMPORARY_API)


def start_temporary_api(say=print) -> "_TemporaryAPI | None":
    """Prefect's temporary API, spawned now, when no PREFECT_API_URL is set (None otherwise)."""
    from prefect.settings import PREFECT_API_URL, PREFECT_SERVER_EPHEMERAL_ENABLED

    if PREFECT_API_URL.value() or not PREFECT_SERVER_EPHEMERAL_ENABLED.value():
        return None
    server = _TemporaryAPI()
    say(f"temporary Prefect API on {server.address} (no PREFECT_API_URL set; it ends with this run)")
    return server


class _TemporaryAPI:
    """Prefect's temporary API server, as Prefect starts it, on a free local port; this process's
    Prefect settings point at it from now on."""

    def __init__(self):
        from prefect.settings import PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS

        self.timeout = PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS.value()
        os.environ.setdefault("PREFECT_UI_URL", "")  # it serves no UI: no "View at" link to a dead page
        self._spawn()
        atexit.register(self.stop)  # registered before Prefect's log and event workers: runs after them

    def _spawn(self) -> None:
        """The server on a free port, and this process's Prefect settings pointing at it."""
        import prefect
        from prefect.context import refresh_global_settings_context
        from prefect.settings import get_current_settings

        self.port = _free_port()
        self.address, self.api_url = f"http://127.0.0.1:{self.port}", f"http://127.0.0.1:{self.port}/api"
        env = {**os.environ, **get_current_settings().to_environment_variables(exclude_unset=True),
               "PREFECT_UI_ENABLED": "0", "PREFECT__SERVER_EPHEMERAL": "1", "PREFECT__SERVER_FINAL": "1"}
        env.pop("PREFECT_API_URL", None)
        # Its stderr to a file, shown if it fails to start: once the run ends or is interrupted, its clients
        # (this process's log and event workers) and services go, and it prints their errors to the terminal.
        self.errors = tempfile.TemporaryFile("w+")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "--app-dir", str(prefect.__module_path__.parent), "--factory",
             "prefect.server.api.server:create_app", "--host", "127.0.0.1", "--port", str(self.port),
             "--log-level", "error", "--lifespan", "on"], env=env, stderr=self.errors)
        interrupt.KILL_FIRST.add(self.process.pid)  # Ctrl-C: nothing of it to save
        os.environ["PREFECT_API_URL"] = os.environ[TEMPORARY_API] = self.api_url
        refresh_global_settings_context()  # Prefect read its settings at import

    def wait(self) -> None:
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            if self.process.poll() == 3:  # uvicorn: the port was taken meanwhile. Another one, as Prefect does
                interrupt.KILL_FIRST.discard(self.process.pid)
                self._spawn()
                continue
            if self.process.poll() is not None:
                self.errors.seek(0)
                raise RuntimeError(f"Prefect's temporary API server exited with code {self.process.returncode} "
                                   f"before answering on {self.address}:\n{self.errors.read()[-3000:]}")
            try:
                with urllib.request.urlopen(f"{self.api_url}/health", timeout=2) as r:
                    if r.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"Prefect's temporary API server did not answer on {self.address} within "
                           f"{self.timeout} s (PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS)")

    def stop(self) -> None:
        """Killed: its database ends with the run, and a graceful shutdown is seconds of cancelled services."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        interrupt.KILL_FIRST.discard(self.process.pid)


def _free_port() -> int:
    """A free port in 8000-8999, as Prefect picks one: outside the kernel's range for port 0, from which
    Ray's processes take theirs while this server is still importing (before it binds)."""
    for port in random.sample(range(8000, 9000), 50):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
                return port
            except OSError:
                continue
    raise RuntimeError("no free port in 8000-8999 for Prefect's temporary API server")
