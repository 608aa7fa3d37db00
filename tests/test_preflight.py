"""Preflight (issue 16, item 2): environment faults found before Ray or Prefect start, each one line,
exit 2, no traceback, within seconds (flows/guard/preflight.py)."""
from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time

import pytest
import yaml
from typer.testing import CliRunner

from flows.guard.preflight import PreflightError, check_storage
from gan_tasks.config import parse_config
from gan_tasks.data.storage import Storage
from tests.conftest import free_port, tiny_config

GANSWEEP = os.path.join(os.path.dirname(sys.executable), "gansweep")


@pytest.fixture
def cli(monkeypatch):
    from flows.cli import app
    from flows.cli.common import console

    monkeypatch.setattr(console, "width", 1000)
    return app


def _config(tmp_path, **over) -> str:
    p = tmp_path / "sweep.yaml"
    p.write_text(yaml.safe_dump(tiny_config(**over)))
    return str(p)


def _one_line_exit_2(out: str, rc: int, words: str) -> None:
    assert rc == 2, out
    assert out.startswith("error:") and words in out and "Traceback" not in out, out
    assert len(out.strip().splitlines()) == 1, out


def test_a_dataset_not_in_storage_is_named_with_the_upload_command(tmp_path, cli):
    store = tmp_path / "store"
    r = CliRunner().invoke(cli, ["run", _config(tmp_path, dataset="mnist", model="dcgan-28"), "--storage", str(store)])
    _one_line_exit_2(r.output, r.exit_code, "dataset 'mnist' is not in storage")
    assert "gansweep data upload mnist" in r.output
    assert not (store / "sweeps").exists() and not (store / ".preflight").exists()


def test_storage_that_cannot_be_written_is_refused(tmp_path, cli):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    r = CliRunner().invoke(cli, ["run", _config(tmp_path), "--storage", str(blocker / "store")])
    _one_line_exit_2(r.output, r.exit_code, "not writable")


def test_a_trial_larger_than_this_machine_is_refused(tmp_path, cli, monkeypatch):
    r = CliRunner().invoke(cli, ["run", _config(tmp_path, resources={"cpus_per_trial": 512}),
                                 "--storage", str(tmp_path / "s")])
    _one_line_exit_2(r.output, r.exit_code, "resources.cpus_per_trial 512 is more than this machine's")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    r = CliRunner().invoke(cli, ["run", _config(tmp_path, resources={"gpus_per_trial": 1}),
                                 "--storage", str(tmp_path / "s")])
    _one_line_exit_2(r.output, r.exit_code, "resources.gpus_per_trial 1 but this machine has 0 GPU(s)")
    assert not (tmp_path / "s").exists()


def _run_s3(tmp_path, endpoint: str, env: dict) -> tuple[str, int, float]:
    t0 = time.monotonic()
    r = subprocess.run([GANSWEEP, "run", _config(tmp_path), "--storage", "s3://no-such-bucket/x",
                        "--s3-endpoint-url", endpoint], capture_output=True, text=True, timeout=120,
                       env={**env, "COLUMNS": "1000"})
    return r.stdout + r.stderr, r.returncode, time.monotonic() - t0


def test_s3_without_credentials_is_one_line(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(AWS_EC2_METADATA_DISABLED="true", AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "none"),
               AWS_CONFIG_FILE=str(tmp_path / "none"))
    out, rc, seconds = _run_s3(tmp_path, f"http://127.0.0.1:{free_port()}", env)
    _one_line_exit_2(out, rc, "no AWS credentials found")
    assert seconds < 60, seconds  # start-up on a loaded CI machine; the check itself takes < 2 s
    print(f"missing credentials surfaced in {seconds:.1f} s")


def test_an_unreachable_s3_endpoint_is_one_line_within_seconds(tmp_path):
    out, rc, seconds = _run_s3(tmp_path, f"http://127.0.0.1:{free_port()}", dict(os.environ))
    _one_line_exit_2(out, rc, "storage s3://no-such-bucket/x (endpoint http://127.0.0.1:")
    assert seconds < 60, seconds  # the 10 s preflight timeout plus start-up on a loaded CI machine (was 106 s)
    print(f"unreachable endpoint surfaced in {seconds:.1f} s")


def test_an_endpoint_that_never_answers_times_out():
    with socket.socket() as silent:  # accepts connections (the backlog) and never says a word
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        st = Storage.parse("s3://bucket/x", endpoint_url=f"http://127.0.0.1:{silent.getsockname()[1]}")
        t0 = time.monotonic()
        with pytest.raises(PreflightError, match="did not answer within 2 s"):
            check_storage(st, parse_config(tiny_config()), timeout=2)
        assert time.monotonic() - t0 < 4


def test_a_healthy_storage_passes_and_keeps_nothing(tmp_path, s3_storage):
    sweep = parse_config(tiny_config())
    check_storage(Storage.parse(str(tmp_path / "store")), sweep)
    assert os.listdir(tmp_path / "store") == []
    check_storage(s3_storage, sweep)
    assert s3_storage.ls() == []


def small_tmpfs_folder(tmp_path):
    """An empty folder a 64 kB tmpfs can be mounted on in a user namespace (`unshare -rm`), or skip."""
    small = tmp_path / "small"
    small.mkdir()
    probe = subprocess.run(["unshare", "-rm", "sh", "-c", f"mount -t tmpfs -o size=64k tmpfs {small}"],
                           capture_output=True, text=True)
    if probe.returncode != 0:
        pytest.skip(f"no user namespace to mount a small tmpfs in: {probe.stderr.strip()}")
    return small


def test_a_dataset_larger_than_the_node_cache_free_space_is_one_line(tmp_path):
    """An added dataset of 200 28x28 images (~157 kB) against a node cache on a real 64 kB tmpfs
    (mounted in a user namespace: `unshare -rm`): `gansweep run` stops before Ray with one line."""
    from gan_tasks.data.ingest import IngestOptions, add
    from tests.test_ingest import N, write_pngs
    from gan_tasks.data.images import SOURCES
    from tests.conftest import DATA

    small = small_tmpfs_folder(tmp_path)
    x = SOURCES["mnist"].read(str(DATA / "mnist"))["train"][:N, 0]
    write_pngs(tmp_path / "png", x)
    st = Storage.parse(str(tmp_path / "store"))
    did = add(st, "digits", str(tmp_path / "png"), IngestOptions(size=28, mode="L"))["id"]
    cfg = tmp_path / "sweep.yaml"
    cfg.write_text(yaml.safe_dump({**tiny_config(), "dataset": "digits", "model": "dcgan-28"}))
    run = f"{sys.executable} -m flows.cli run {cfg} --storage {st.url}"
    r = subprocess.run(["unshare", "-rm", "sh", "-c", f"mount -t tmpfs -o size=64k tmpfs {small} && "
                        f"GANSWEEP_CACHE={small}/cache {run}"], capture_output=True, text=True, timeout=120)
    out = " ".join(r.stdout.split())
    _one_line_exit_2(r.stdout, r.returncode, f"dataset 'digits' needs 0.16 MB in the node cache {small}/cache")
    free = re.search(r"which has (\d+\.\d\d) MB free", out)  # a 64 kB tmpfs less its own entries: 0.06-0.07
    assert free and 0.0 < float(free.group(1)) <= 0.07 and did, out
    assert not (tmp_path / "store" / "sweeps").exists()


@pytest.mark.parametrize("what", ["nothing listens", "a web server"])
def test_a_cluster_address_that_is_not_a_ray_head_is_one_line_within_seconds(tmp_path, cli, what):
    """ray.init would retry such an address for minutes without a word (issue 28, item 7)."""
    import http.server
    import threading

    port = free_port()
    if what == "a web server":
        quiet = type("Quiet", (http.server.BaseHTTPRequestHandler,), {"log_message": lambda *a: None})
        srv = http.server.HTTPServer(("127.0.0.1", port), quiet)
        threading.Thread(target=srv.serve_forever, daemon=True).start()
    t0 = time.monotonic()
    r = CliRunner().invoke(cli, ["run", _config(tmp_path), "--storage", str(tmp_path / "s"),
                                 "--ray-address", f"127.0.0.1:{port}"])
    _one_line_exit_2(r.output, r.exit_code, f"--ray-address 127.0.0.1:{port} is not a Ray head")
    assert time.monotonic() - t0 < 15
    assert not (tmp_path / "s").exists()
    if what == "a web server":
        srv.shutdown()
