"""A real Prefect server on 127.0.0.1: `gansweep serve` creates the nightly deployment, a run triggered
through the API completes, and what the UI shows (task runs, artifacts) reads back through the client.

Nothing runs in this test process but the Prefect client: the server, `gansweep serve` and the flow
run it starts (with its own local Ray) are subprocesses, all stopped at the end.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pandas as pd
import psutil
import pytest
import yaml

from flows.run.train import POLL_SECONDS
from tests.conftest import free_port, tiny_config

pytestmark = pytest.mark.slow
BIN = Path(sys.executable).parent
CRON = "0 2 * * *"
DEPLOYMENT = "gansweep-nightly/nightly"
STEPS = 1500  # long enough (several s per trial here) for the progress to be polled while it trains


class Tree:
    """A subprocess in a session of its own, and every process seen below it while it ran.

    The Prefect runner starts each flow run in a new session (and Ray's processes hang below that),
    so killing the process group is not enough: the descendants are recorded while it runs.
    """

    def __init__(self, args: list[str], env: dict, log: Path):
        self.log = log
        self._out = open(log, "wb")
        self.proc = subprocess.Popen(args, env=env, stdout=self._out, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        self.seen: dict[int, psutil.Process] = {}
        self.cmdlines: dict[int, str] = {}  # as seen while they ran
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        while not self._stop.wait(0.5):
            try:
                children = psutil.Process(self.proc.pid).children(recursive=True)
            except psutil.Error:
                continue
            for p in children:
                if p.pid not in self.seen:
                    self.seen[p.pid] = p
                    try:
                        self.cmdlines[p.pid] = " ".join(p.cmdline())
                    except psutil.Error:
                        self.cmdlines[p.pid] = "?"

    def alive(self) -> list[psutil.Process]:
        """Descendants seen so far that still run (psutil checks the start time: no pid reuse)."""
        out = []
        for p in self.seen.values():
            try:
                if p.is_running() and p.status() != psutil.STATUS_ZOMBIE:
                    out.append(p)
            except psutil.Error:
                pass
        return out

    def tail(self, n: int = 4000) -> str:
        return self.log.read_text(errors="replace")[-n:]

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)
        if self.proc.poll() is None:
            for sig, wait in ((signal.SIGTERM, 15), (signal.SIGKILL, 10)):
                try:
                    os.killpg(self.proc.pid, sig)  # its whole process group
                except ProcessLookupError:
                    break
                try:
                    self.proc.wait(wait)
                    break
                except subprocess.TimeoutExpired:
                    continue
        for p in self.alive():  # descendants in sessions of their own, by pid
            try:
                p.kill()
            except psutil.Error:
                pass
        psutil.wait_procs(list(self.seen.values()), timeout=10)
        self._out.close()


def _wait(what: str, check, timeout: float, every: float = 1.0, tree: Tree | None = None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        out = check()
        if out:
            return out
        if tree is not None and tree.proc.poll() is not None:
            raise AssertionError(f"{what}: process exited with {tree.proc.returncode}\n{tree.tail()}")
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}"
                         + (f"\n{tree.tail()}" if tree else ""))


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=5) as r:
            return r.status == 200
    except OSError:
        return False


@pytest.fixture
def prefect_server(tmp_path):
    """`prefect server start` on 127.0.0.1 with its own PREFECT_HOME (sqlite database under tmp_path)."""
    home = tmp_path / "prefect-home"
    home.mkdir()
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(PREFECT_HOME=str(home), PREFECT_SERVER_ANALYTICS_ENABLED="false", PREFECT_SERVER_UI_ENABLED="false",
               PREFECT_SERVER_API_HOST="127.0.0.1", PREFECT_SERVER_API_PORT=str(port))
    server = Tree([str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)], env,
                  tmp_path / "server.log")
    api = f"http://127.0.0.1:{port}/api"
    try:
        t0 = time.monotonic()
        _wait("the Prefect server's /api/health", lambda: _healthy(api), 180, tree=server)
        print(f"\nPrefect server {api} healthy after {time.monotonic() - t0:.0f} s "
              f"(database {next(home.glob('*.db'), '?')})")
        yield api, home
    finally:
        server.stop()


def test_nightly_deployment_runs_through_a_real_prefect_server(prefect_server, tmp_path):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (ArtifactFilter, ArtifactFilterFlowRunId, FlowRunFilter,
                                                FlowRunFilterId, FlowRunFilterParentFlowRunId, LogFilter,
                                                LogFilterTaskRunId)
    from prefect.exceptions import ObjectNotFound
    from prefect.settings import PREFECT_API_URL, temporary_settings

    api, home = prefect_server
    t_start = time.monotonic()
    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump(tiny_config(train={"steps": STEPS, "checkpoint_every": 500})))
    store = tmp_path / "store"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(PREFECT_API_URL=api, PREFECT_HOME=str(home), PREFECT_RUNNER_POLL_FREQUENCY="2",
               RAY_ADDRESS="")  # the flow run starts (and stops) a local Ray of its own
    serve = Tree([str(BIN / "gansweep"), "serve", str(config), "--cron", CRON, "--storage", str(store)], env,
                 tmp_path / "serve.log")
    try:
        with temporary_settings({PREFECT_API_URL: api}), get_client(sync_client=True) as client:
            def deployment():
                try:
                    return client.read_deployment_by_name(DEPLOYMENT)
                except ObjectNotFound:
                    return None

            dep = _wait(f"deployment {DEPLOYMENT}", deployment, 120, tree=serve)
            assert [s.schedule.cron for s in dep.schedules] == [CRON]
            assert dep.parameters["config_path"] == str(config)
            assert dep.parameters["storage_url"] == str(store)

            run = client.create_flow_run_from_deployment(dep.id)
            t_run = time.monotonic()
            run = _wait("the flow run to finish",
                        lambda: (r := client.read_flow_run(run.id)).state.is_final() and r, 300, 2, serve)
            run_seconds = time.monotonic() - t_run
            assert run.state.is_completed(), f"{run.state}\n{serve.tail()}"

            # Everything the run started below the runner (the flow run's process, Ray's raylet, GCS and
            # workers) is gone once it finished, before `gansweep serve` itself is stopped.
            ray_seen = [c for c in serve.cmdlines.values() if "ray" in c.lower()]
            assert any("raylet" in c for c in ray_seen), f"no raylet was seen below the runner: {serve.cmdlines}"
            left = _wait_gone(serve, 60)
            assert not left, f"still running after the flow run finished: {[serve.cmdlines[p.pid] for p in left]}"

            subflows = client.read_flow_runs(flow_run_filter=FlowRunFilter(
                parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=[run.id])))
            ids = [run.id, *[s.id for s in subflows]]
            task_runs = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=ids)))
            artifacts = client.read_artifacts(
                artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=ids)))
            flow_names = {f.id: f.name for f in client.read_flows()}
            trial_ids = [t.id for t in task_runs if any(tag.startswith("loss:") for tag in t.tags)]

            def trial_logs():  # the runner ships logs in batches: wait for each trial's last line
                got = client.read_logs(log_filter=LogFilter(task_run_id=LogFilterTaskRunId(any_=trial_ids)))
                return sum("completed after" in r.message for r in got) == len(trial_ids) and got

            logs = _wait("the trials' final log lines", trial_logs, 30)

        _print_ui(run, subflows, flow_names, task_runs, artifacts, logs)
        print(f"flow run {run_seconds:.0f} s; test {time.monotonic() - t_start:.0f} s after the server was up; "
              f"{len(serve.seen)} processes below the runner ({len(ray_seen)} of them Ray's), all gone")

        # One task run per trial, named and tagged by loss / optimizer / seed.
        trials = [t for t in task_runs if any(tag.startswith("loss:") for tag in t.tags)]
        expected = {("non-saturating", "adam", 0), ("lsgan-011", "adam", 0)}
        assert len(trials) == len(expected)
        got = set()
        for t in trials:
            tags = dict(tag.split(":", 1) for tag in t.tags)
            loss, opt, seed = tags["loss"], tags["optimizer"], int(tags["seed"])
            assert t.name.startswith(f"{loss}/{opt}/seed{seed} ["), t.name
            assert t.state.is_completed()
            got.add((loss, opt, seed))
        assert got == expected
        # each trial is evaluated by its actor within its own task run: no evaluation task runs (issue 15)
        assert sum(t.name.startswith("evaluate ") for t in task_runs) == 0

        # A progress artifact per trial task run, at 100 % with the steps/s it trained at.
        progress = {a.task_run_id: a for a in artifacts if a.type == "progress"}
        for t in trials:
            a = progress[t.id]
            assert a.data == 100.0
            trial_id = t.name.split("[")[1].rstrip("]")
            assert f"({trial_id}): completed, step {STEPS}/{STEPS}, " in a.description
            assert a.description.endswith(" steps/s") and float(a.description.split(", ")[-1].split()[0]) > 0

        # ... and updated while it trained: each update is logged with the step and steps/s. A trial that
        # trained for several poll intervals must show at least one update before its last step.
        sweep_dir = next((store / "sweeps").iterdir())
        wall = pd.read_parquet(sweep_dir / "trials").set_index("trial_id").wall_seconds
        for t in trials:
            trial_id = t.name.split("[")[1].rstrip("]")
            during = [r.message for r in logs if r.task_run_id == t.id and ": step " in r.message
                      and f"/{STEPS} (" in r.message and f"step {STEPS}/" not in r.message]
            assert all(m.endswith(" steps/s)") for m in during)
            if wall[trial_id] > 4 * POLL_SECONDS:
                assert during, f"{t.name} trained {wall[trial_id]:.0f} s without a progress update"

        # The rankings as a table artifact, the report's summary and location as a markdown artifact.
        (ranks,) = [a for a in artifacts if a.type == "table" and a.key.startswith("rankings-")]
        rows = json.loads(ranks.data) if isinstance(ranks.data, str) else ranks.data
        assert {r["loss"] for r in rows} == {"non-saturating", "lsgan-011"} and {"metric", "rank"} <= set(rows[0])
        (md,) = [a for a in artifacts if a.type == "markdown" and a.key.startswith("report-")]
        location = md.data.split("Report: `")[1].split("`")[0]
        assert location.startswith(str(store)) and location.endswith("/report/index.html")
        assert Path(location.removeprefix("file://")).is_file()
        assert "Status: {'completed': 2}" in md.data and "## Rankings" in md.data
    finally:
        serve.stop()
    assert not serve.alive()


def _wait_gone(tree: Tree, timeout: float) -> list[psutil.Process]:
    """Descendants of the runner still running after timeout: none but the runner's own multiprocessing
    resource tracker, which lives as long as `gansweep serve` (and stop() checks it goes with it)."""
    deadline = time.monotonic() + timeout
    while True:
        left = [p for p in tree.alive()
                if not (p.ppid() == tree.proc.pid and "multiprocessing.resource_tracker" in tree.cmdlines[p.pid])]
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(1)


def _print_ui(run, subflows, flow_names, task_runs, artifacts, logs) -> None:
    """What the Prefect UI shows for this run, as read back from the API."""
    print(f"\n=== UI view: flow run {flow_names.get(run.flow_id)}/{run.name} [{run.state.name}]")
    for s in subflows:
        print(f"    subflow {flow_names.get(s.flow_id)}/{s.name} [{s.state.name}]")
    print("task runs:")
    for t in sorted(task_runs, key=lambda t: t.expected_start_time or t.created):
        print(f"  {t.state.name:<10} {t.name:<50} {','.join(sorted(t.tags))}")
    print("artifacts:")
    for a in sorted(artifacts, key=lambda a: (a.type, a.key or "", a.description or "")):
        data = a.data if a.type == "progress" else f"{len(str(a.data))} chars"
        print(f"  {a.type:<9} key={a.key or '-':<32} data={data}  {a.description or ''}")
        if a.type == "markdown" and "Report: `" in str(a.data):
            print(f"            {str(a.data).splitlines()[2]}")
    print("trial logs:")
    for r in sorted(logs, key=lambda r: r.timestamp):
        print(f"  {r.timestamp:%H:%M:%S} {r.message}")
    print("===")
