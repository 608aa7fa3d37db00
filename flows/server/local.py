"""The Prefect server `gansweep serve` needs for its schedule, when no PREFECT_API_URL names one.

Prefect's temporary API (what `gansweep run` uses) has no scheduler: a deployment served against it
never gets a run. So `serve` starts a real, persistent Prefect server of its own: `prefect server
start` with its scheduler on, bound to 127.0.0.1, its SQLite database under GANSWEEP_PREFECT_HOME
(default ~/.gansweep/prefect, kept between serves so the UI keeps every night's history), its output
in server.log there, and stopped when `serve` stops. With PREFECT_API_URL set, that server must answer.
"""
from __future__ import annotations

import atexit
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from gan_tasks.errors import UserError

DEFAULT_PORT = 4200  # Prefect's own default: the UI where its docs say it is
HOME_ENV = "GANSWEEP_PREFECT_HOME"
STARTUP_SECONDS = 120  # the first start creates and migrates the database


class ServerError(UserError, RuntimeError):
    """The server cannot be used or started; the message is one line for the user."""


def home() -> Path:
    return Path(os.environ.get(HOME_ENV) or Path.home() / ".gansweep" / "prefect").expanduser()


def healthy(api_url: str, timeout: float = 3) -> bool:
    try:
        with urllib.request.urlopen(f"{api_url.rstrip('/')}/health", timeout=timeout) as r:
            return r.status == 200
    except OSError:
        return False


def check_external(api_url: str) -> None:
    """A server named by PREFECT_API_URL must answer now, not at the first night."""
    if not healthy(api_url, timeout=10):
        raise ServerError(f"PREFECT_API_URL={api_url} does not answer: start that server "
                          "(prefect server start --host 127.0.0.1) or unset PREFECT_API_URL to let "
                          "gansweep serve start one of its own")


class LocalServer:
    """`prefect server start` (API, UI and scheduler) on 127.0.0.1:port; this process points at it."""

    def __init__(self, port: int = DEFAULT_PORT, say=print):
        self.home, self.port, self.say = home(), port, say
        self.address = f"http://127.0.0.1:{port}"
        self.api_url = f"{self.address}/api"
        self.process: subprocess.Popen | None = None

    def start(self) -> "LocalServer":
        with socket.socket() as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds: TIME_WAIT is free
            try:
                s.bind(("127.0.0.1", self.port))
            except OSError:
                raise ServerError(
                    f"port {self.port} is in use: if a Prefect server runs there, export "
                    f"PREFECT_API_URL={self.api_url}; otherwise pass --prefect-port PORT") from None
        self.home.mkdir(parents=True, exist_ok=True)
        log = open(self.home / "server.log", "ab")
        env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_SERVER_SERVICES_")}
        env.pop("PREFECT_API_URL", None)
        env.update(PREFECT_HOME=str(self.home), PREFECT_SERVER_ANALYTICS_ENABLED="false",
                   PREFECT_SERVER_API_HOST="127.0.0.1", PREFECT_SERVER_API_PORT=str(self.port),
                   PREFECT_UI_API_URL=self.api_url)
        # A session of its own: the runner's flow runs and Ctrl-C in the terminal do not reach it; stop() does.
        self.process = subprocess.Popen(
            [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(self.port)],
            env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        atexit.register(self.stop)
        self._wait()
        os.environ["PREFECT_API_URL"] = self.api_url
        self.say(f"Prefect server (with its scheduler) on {self.address}: open it for the UI; database "
                 f"{self.home / 'prefect.db'}, log {self.home / 'server.log'}; it stops with this process")
        return self

    def _wait(self) -> None:
        deadline = time.monotonic() + STARTUP_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise ServerError(f"the Prefect server exited with code {self.process.returncode} before "
                                  f"answering on {self.address}; see {self.home / 'server.log'}")
            if healthy(self.api_url, timeout=2):
                return
            time.sleep(0.5)
        self.stop()
        raise ServerError(f"the Prefect server did not answer on {self.address} within {STARTUP_SECONDS} s; "
                          f"see {self.home / 'server.log'}")

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        for sig, wait in ((signal.SIGTERM, 15), (signal.SIGKILL, 5)):
            try:
                os.killpg(self.process.pid, sig)
            except ProcessLookupError:
                return
            try:
                self.process.wait(wait)
                return
            except subprocess.TimeoutExpired:
                continue
