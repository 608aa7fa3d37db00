"""The node-cache preflight on a cluster: every Ray node that can hold a trial checks its own cache
($GANSWEEP_CACHE) has room for the dataset (a zero-CPU task pinned to it). Two nodes on 127.0.0.1
(bench/loopback_cluster.py's `ray` launcher); the second's cache is a real 64 kB tmpfs, mounted in a user namespace
(`unshare -rm`) that the node runs in: `gansweep run --ray-address` stops with one line naming it."""
import os
import subprocess
import uuid

import psutil
import pytest
import yaml

from gan_tasks.data.images import SOURCES
from gan_tasks.data.ingest import IngestOptions, add
from gan_tasks.data.storage import Storage
from tests.conftest import DATA, free_port, tiny_config
from tests.test_cluster import BIN, LOOPBACK_RAY, ROOT
from tests.test_ingest import N, write_pngs
from tests.test_preflight import small_tmpfs_folder

pytestmark = pytest.mark.slow


def _stop(temp: str) -> None:
    """Kill exactly the test cluster's processes (their command line names its session dir), by pid."""
    for p in psutil.process_iter(["cmdline"]):
        if temp in " ".join(p.info["cmdline"] or []):
            for q in [*p.children(recursive=True), p]:
                try:
                    q.kill()
                except psutil.Error:
                    pass


def test_a_node_without_cache_room_is_named_in_one_line(tmp_path):
    small = small_tmpfs_folder(tmp_path)
    write_pngs(tmp_path / "png", SOURCES["mnist"].read(str(DATA / "mnist"))["train"][:N, 0])
    st = Storage.parse(str(tmp_path / "store"))
    add(st, "digits", str(tmp_path / "png"), IngestOptions(size=28, mode="L"))  # 200 x 784 B: 0.16 MB
    cfg = tmp_path / "sweep.yaml"
    cfg.write_text(yaml.safe_dump({**tiny_config(), "dataset": "digits", "model": "dcgan-28"}))

    port = free_port()
    env = {**os.environ, "RAY_ADDRESS": "", "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": uuid.uuid4().hex * 2,
           "GANSWEEP_CACHE": str(tmp_path / "head-cache")}
    addr, temp = f"127.0.0.1:{port}", f"/tmp/rc{port}"
    ray_start = f"{' '.join(LOOPBACK_RAY)} start --node-ip-address 127.0.0.1 --num-gpus 0 --num-cpus 1"
    try:
        subprocess.run(f"{ray_start} --head --port {port} --temp-dir {temp} --include-dashboard false", shell=True,
                       check=True, env=env, capture_output=True, timeout=180, cwd=ROOT)
        # the second node, and every worker it starts, sees its own cache: the 64 kB tmpfs
        subprocess.run(["unshare", "-rm", "sh", "-c", f"mount -t tmpfs -o size=64k tmpfs {small} && "
                        f"GANSWEEP_CACHE={small}/cache {ray_start} --address {addr}"],
                       check=True, env=env, capture_output=True, timeout=180, cwd=ROOT)
        r = subprocess.run([str(BIN / "gansweep"), "run", str(cfg), "--storage", st.url, "--ray-address", addr],
                           capture_output=True, text=True, env=env, timeout=300)
    finally:
        _stop(temp)
    out = r.stdout + r.stderr
    assert r.returncode == 2 and "Traceback" not in out, out[-3000:]
    line = next(ln for ln in out.splitlines() if "node cache" in ln)
    assert f"dataset 'digits' needs 0.16 MB in the node cache {small}/cache (GANSWEEP_CACHE) on node " in line
    assert "(127.0.0.1), which has 0.07 MB free" in line, line
    assert not (tmp_path / "store" / "sweeps").exists()
