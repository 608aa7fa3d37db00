"""Nightly sweeps fire by the schedule: `gansweep serve` with no PREFECT_API_URL starts a Prefect server with
its scheduler, two nights run a minute apart without anyone triggering them, the second night compares
itself with the first, and stopping serve leaves nothing running.

The fast tests: the SQLAlchemy pin the scheduler needs, and serve refusing at once (exit 2, one line) when
it could never get a run.
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from importlib.metadata import version
from pathlib import Path

import pandas as pd
import psutil
import pytest
import yaml

from tests.conftest import free_port, tiny_config
from tests.test_prefect_server import BIN, Tree, _wait

DEPLOYMENT = "gansweep-nightly/nightly"


def _env(tmp_path: Path, **extra) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(GANSWEEP_PREFECT_HOME=str(tmp_path / "prefect-home"), PREFECT_HOME=str(tmp_path / "client-home"),
               PREFECT_RUNNER_POLL_FREQUENCY="2", RAY_ADDRESS="", **extra)
    return env


def _config(tmp_path: Path) -> Path:
    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump(tiny_config(grid={"seed": [0, 1]})))
    return config


def test_sqlalchemy_is_one_prefects_scheduler_supports():
    # prefect 3.8.8's scheduler fails every cycle on SQLAlchemy 2.1 ("Can't evaluate bulk DML statement")
    assert version("sqlalchemy").startswith("2.0."), version("sqlalchemy")


def _serve(config: Path, tmp_path: Path, *args: str, **env) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "gansweep"), "serve", str(config), "--storage", str(tmp_path / "store"), *args],
                          env=_env(tmp_path, **env), capture_output=True, text=True, timeout=120)


def test_serve_refuses_a_prefect_api_url_that_does_not_answer(tmp_path):
    dead = f"http://127.0.0.1:{free_port()}/api"
    out = _serve(_config(tmp_path), tmp_path, PREFECT_API_URL=dead)
    assert out.returncode == 2, out.stdout + out.stderr
    assert out.stdout.strip() == (f"error: PREFECT_API_URL={dead} does not answer: start that server (prefect server "
                                  "start --host 127.0.0.1) or unset PREFECT_API_URL to let gansweep serve start one "
                                  "of its own"), out.stdout
    assert "Traceback" not in out.stderr


def test_serve_refuses_a_taken_port_before_starting_a_server(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        out = _serve(_config(tmp_path), tmp_path, "--prefect-port", str(port))
    assert out.returncode == 2, out.stdout + out.stderr
    assert out.stdout.startswith(f"error: port {port} is in use: if a Prefect server runs there, export "
                                 f"PREFECT_API_URL=http://127.0.0.1:{port}/api"), out.stdout
    assert not (tmp_path / "prefect-home").exists()


@pytest.mark.slow
def test_two_nights_run_by_the_schedule_and_compare(tmp_path):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterName, FlowRunFilter
    from prefect.client.schemas.sorting import FlowRunSort
    from prefect.settings import PREFECT_API_URL, temporary_settings

    port = free_port()
    api = f"http://127.0.0.1:{port}/api"
    store = tmp_path / "store"
    serve = Tree([str(BIN / "gansweep"), "serve", str(_config(tmp_path)), "--cron", "* * * * *", "--storage",
                  str(store), "--prefect-port", str(port)], _env(tmp_path), tmp_path / "serve.log")
    try:
        _wait("serve's Prefect server", lambda: "is being served" in serve.tail(), 180, tree=serve)
        start = serve.log.read_text()
        # A normal start says where the server and UI are and that the flow is served; no noise.
        assert f"Prefect server (with its scheduler) on http://127.0.0.1:{port}: open it for the UI" in start
        for noise in ("ERROR", "Traceback", "telemetry", "ephemeral", "Cannot schedule"):
            assert noise not in start, start

        with temporary_settings({PREFECT_API_URL: api}), get_client(sync_client=True) as client:
            def nights():
                runs = client.read_flow_runs(
                    deployment_filter=DeploymentFilter(name=DeploymentFilterName(any_=["nightly"])),
                    flow_run_filter=FlowRunFilter(), sort=FlowRunSort.EXPECTED_START_TIME_ASC)
                done = [r for r in runs if r.state and r.state.is_final()]
                return done if len(done) >= 2 else None

            first, second = _wait("two scheduled nights to finish", nights, 300, 2, serve)[:2]
        for night in (first, second):
            assert night.auto_scheduled, f"{night.name} was not created by the scheduler"
            assert night.state.is_completed(), f"{night.name}: {night.state}\n{serve.tail()}"
        gap = (second.expected_start_time - first.expected_start_time).total_seconds()
        assert gap == 60, gap
        print(f"\nnight 1: flow run {first.name!r}, scheduled {first.expected_start_time:%H:%M:%S}, "
              f"started {first.start_time:%H:%M:%S}\nnight 2: flow run {second.name!r}, scheduled "
              f"{second.expected_start_time:%H:%M:%S}, started {second.start_time:%H:%M:%S}")

        sweeps = sorted(p.name for p in (store / "sweeps").iterdir())
        assert len(sweeps) >= 2 and all(s.startswith("tiny-") for s in sweeps)
        cmp = pd.read_parquet(store / "sweeps" / sweeps[1] / "comparison" / f"{sweeps[0]}.parquet")
        print(f"comparison {sweeps[1]} vs {sweeps[0]}:\n{cmp.to_string(index=False)}")
        assert set(cmp.loss) == {"non-saturating", "lsgan-011"} and "modes_covered" in set(cmp.metric)

        # Stopping serve (SIGTERM, as a service manager does) stops its server and every night's process.
        serve.proc.send_signal(signal.SIGTERM)
        serve.proc.wait(60)
        deadline = time.monotonic() + 30
        while serve.alive() and time.monotonic() < deadline:
            time.sleep(1)
        left = serve.alive()
        assert not left, f"left running: {[serve.cmdlines.get(p.pid) for p in left]}"
        assert any("prefect server start" in c for c in serve.cmdlines.values()), serve.cmdlines
    finally:
        serve.stop()
