"""Credentials never leak; checkpoints load without pickle; what we start listens on 127.0.0.1 only."""
import asyncio
import io
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import psutil
import pytest
import torch

from flows.run.flow import sweep_flow
from tests.conftest import tiny_config
from tests.tcp_proxy import TcpProxy

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]


def _api_text() -> str:
    """Every Prefect artifact and log line of the test API, as one string."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import LogFilter

    async def read() -> str:
        async with get_client() as client:
            arts = await client.read_artifacts()
            logs = await client.read_logs(LogFilter())
        return " ".join(str(a.data) + str(a.description) for a in arts) + " ".join(l.message for l in logs)

    return asyncio.run(read())


def test_no_credential_reaches_outputs_artifacts_or_logs(ray_session, prefect_harness, s3_storage, capfd):
    key, secret = os.environ["AWS_ACCESS_KEY_ID"], os.environ["AWS_SECRET_ACCESS_KEY"]
    assert key.startswith("AKIATEST")  # the fake pair from conftest, never a real one
    out = sweep_flow(tiny_config(), s3_storage.url, "sec-1", None, s3_storage.endpoint_url)
    assert out["not_completed"] == 0

    fs = s3_storage.fs
    files = [p for p in fs.find(s3_storage.url) if not p.endswith("/")]
    kinds = {p.rsplit(".", 1)[-1] for p in files}
    assert {"yaml", "parquet", "pt", "html", "json"} <= kinds, kinds  # config, tables, checkpoints, report
    for p in files:
        blob = fs.cat_file(p)
        assert key.encode() not in blob and secret.encode() not in blob, p

    text = _api_text()
    assert "sec-1" in text  # the artifacts and logs were really read
    assert key not in text and secret not in text
    captured = capfd.readouterr()
    assert key not in captured.out + captured.err and secret not in captured.out + captured.err

    # The Ray session's own logs (driver, raylet, every worker and actor) say nothing of them either.
    logs = Path(ray_session._private.worker._global_node.get_logs_dir_path())
    scanned = [p for p in logs.rglob("*") if p.is_file()]
    assert any("worker" in p.name for p in scanned)
    for p in scanned:
        blob = p.read_bytes()
        assert key.encode() not in blob and secret.encode() not in blob, p

    # Every checkpoint loads with weights_only=True: tensors and plain containers, no pickled code.
    ckpts = [p for p in files if p.endswith(".pt")]
    assert len(ckpts) >= 2
    for p in ckpts:
        state = torch.load(io.BytesIO(fs.cat_file(p)), weights_only=True)
        assert state["step"] > 0 and state["G"]


def _other_address() -> str | None:
    """A non-loopback address of this machine, if it has one."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("192.0.2.1", 9))  # UDP connect sends nothing: it only picks the route
            ip = s.getsockname()[0]
        except OSError:
            return None
    return None if ip.startswith("127.") else ip


def _listens_on(port: int) -> set[str]:
    return {c.laddr.ip for c in psutil.net_connections("inet")
            if c.status == psutil.CONN_LISTEN and c.laddr.port == port}


def test_test_servers_listen_on_loopback_only(s3_server):
    moto_port = int(s3_server.rsplit(":", 1)[1])
    proxy = TcpProxy(moto_port).start()
    try:
        for port in (moto_port, proxy.port):
            assert _listens_on(port) == {"127.0.0.1"}
            other = _other_address()
            if other:  # reachable on loopback, refused on the machine's other address
                with pytest.raises(OSError):
                    socket.create_connection((other, port), timeout=2).close()
            socket.create_connection(("127.0.0.1", port), timeout=2).close()
    finally:
        proxy.stop()


PROBE = """
import json, psutil, ray
from prefect import flow
from flows.actors.session import ensure_ray as _ensure_ray

@flow  # inside a flow run, as `gansweep run` does: Prefect's temporary API server is up too
def probe():
    assert _ensure_ray(None)
    tree = [psutil.Process()] + psutil.Process().children(recursive=True)
    pids = {p.pid for p in tree}
    listen = [[c.laddr.ip, c.laddr.port] for c in psutil.net_connections("inet")
              if c.status == psutil.CONN_LISTEN and c.pid in pids]
    return {"webui_url": ray._private.worker._global_node.webui_url,
            "cmdlines": [" ".join(p.cmdline()) for p in tree if p.is_running()], "listen": sorted(listen)}

print(json.dumps(probe()))
ray.shutdown()
"""


def test_what_the_tool_starts_has_no_dashboard_and_listens_on_loopback(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    env["RAY_ADDRESS"] = ""  # a local Ray of its own, not the test session's; Prefect's temporary API
    r = subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, env=env, capture_output=True, text=True, timeout=180)
    assert r.returncode == 0, r.stderr[-3000:]
    info = json.loads(r.stdout.strip().splitlines()[-1])
    assert any("raylet" in c for c in info["cmdlines"])  # the probe did see Ray's processes
    assert any("uvicorn" in c for c in info["cmdlines"])  # and Prefect's temporary API server
    assert not info["webui_url"]  # no dashboard URL: the web UI is off
    # Ray 2.60 still starts its dashboard head process for usage stats only: no frontend, loopback host.
    heads = [c for c in info["cmdlines"] if "dashboard/dashboard.py" in c]
    assert all("--disable-frontend" in c and "--modules-to-load=UsageStatsHead" in c for c in heads), heads
    assert all("--host=127.0.0.1" in c or "--host=localhost" in c for c in heads), heads
    assert 8265 not in [port for _, port in info["listen"]]  # nothing of ours on the dashboard port
    # GCS, raylet, workers, agents: every listening socket is loopback (IPv4, or IPv4-mapped on a
    # dual-stack socket); none on 0.0.0.0 / :: or the machine's routable address.
    addrs = {ip for ip, _ in info["listen"]}
    assert len(info["listen"]) >= 4, info["listen"]  # GCS + raylet + driver + agents at least
    assert addrs <= {"127.0.0.1", "::ffff:127.0.0.1", "::1"}, info["listen"]
    print(f"local Ray + Prefect temporary API: {len(info['listen'])} listening sockets, all on {sorted(addrs)}")


def test_test_ray_session_is_loopback_only(ray_session):
    """The shared test Ray is started the same way: its ports refuse the machine's other address."""
    ports = [c.laddr.port for c in psutil.net_connections("inet") if c.status == psutil.CONN_LISTEN
             and c.pid in {p.pid for p in [psutil.Process()] + psutil.Process().children(recursive=True)}]
    assert ports
    other = _other_address()
    for port in ports:
        assert _listens_on(port) <= {"127.0.0.1", "::ffff:127.0.0.1", "::1"}, port
        if other:
            with pytest.raises(OSError):
                socket.create_connection((other, port), timeout=2).close()
