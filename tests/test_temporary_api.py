"""`gansweep run` without PREFECT_API_URL (the embedded default) spawns Prefect's temporary API itself
(flows/server/temporary.py, started by flows/run/launch.py), first thing, and points Prefect at it: the flow run and every trial's task run are on
it while the sweep runs (no tags there: each costs concurrency-slot round trips), no "View at" link to
a UI it does not serve, and the server is gone when the command ends. Its local Ray starts without waiting
on the dashboard agent's fixed port when another Ray holds it."""
import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import yaml

from flows.guard.interrupt import _alive, descendants
from tests.conftest import tiny_config

pytestmark = pytest.mark.slow
GANSWEEP = str(Path(sys.executable).with_name("gansweep"))


def _post(url: str, body: dict) -> list[dict]:
    req = urllib.request.Request(url, json.dumps(body).encode(), {"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())


def test_the_run_starts_its_own_temporary_api_uses_it_and_stops_it(tmp_path):
    cfg = tiny_config(grid={"seed": [0, 1]}, train={"steps": 1500, "checkpoint_every": 500})
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(cfg))
    env = {**os.environ, "PREFECT_HOME": str(tmp_path / "prefect"), "RAY_ADDRESS": ""}
    env.pop("PREFECT_API_URL", None)
    held = socket.socket()  # another local Ray's dashboard agent port: the run's own agent must take another
    try:
        held.bind(("127.0.0.1", 52365))
    except OSError:
        pass  # held already (the test session's Ray, on older code): the same conflict
    p = subprocess.Popen([GANSWEEP, "run", str(tmp_path / "c.yaml"), "--storage", str(tmp_path / "store"),
                          "--sweep-id", "api"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    lines = []
    for line in p.stdout:  # until the trials train: the flow run and its task runs exist on the API
        lines.append(line)
        if "step " in line and "steps/s" in line:
            break
    said = "".join(lines)
    m = re.search(r"temporary Prefect API on (http://127\.0\.0\.1:(\d+))", said)
    assert m, said
    api, port = m.group(1) + "/api", int(m.group(2))
    server = [c for c in descendants(p.pid) if b"uvicorn" in Path(f"/proc/{c}/cmdline").read_bytes()]
    assert len(server) == 1, "one API server, a child of the run"
    flows = _post(f"{api}/flow_runs/filter", {})
    assert [f["state_type"] for f in flows] == ["RUNNING"], flows
    tasks = _post(f"{api}/task_runs/filter", {})
    trials = [t for t in tasks if t["name"].endswith("]")]
    assert trials and all(t["flow_run_id"] == flows[0]["id"] and t["tags"] == [] for t in trials), trials
    out = said + p.stdout.read()
    assert p.wait(timeout=300) == 0, out[-3000:]
    assert "View at" not in out and "Traceback" not in out and "ERROR" not in out, out[-3000:]
    assert "Starting temporary server" not in out, "Prefect must not start a second one"
    time.sleep(0.5)
    assert not _alive(server[0]), "the API server outlived the run"
    with pytest.raises(OSError):
        urllib.request.urlopen(f"http://127.0.0.1:{port}/api/health", timeout=2)
    held.close()
    # Ray names the run's session after its pid; its agent served on a port of its own, without retries
    session = [d for d in Path("/tmp/ray").glob(f"session_*_{p.pid}") if d.is_dir()]
    assert len(session) == 1, session
    agent_log = (session[0] / "logs" / "dashboard_agent.log").read_text()
    assert "Failed to bind" not in agent_log and "Dashboard agent http address: 127.0.0.1:" in agent_log
