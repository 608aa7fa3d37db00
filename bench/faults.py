"""How long each fault of issue 16 takes to surface, through the real command line: `python bench/faults.py`.

Writes bench/faults.md: the bad-input corpus (tests/test_bad_inputs.py) refused before any
compute / total, then one row per fault: wall seconds from the command's start to its exit (or, for
Ctrl-C, from the signal to the exit), the exit code, and the first line it printed. Every command
runs in a subprocess on local storage or a local S3 endpoint (moto), as a user would run it.
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from tests.conftest import tiny_config  # noqa: E402

GANSWEEP = str(Path(sys.executable).with_name("gansweep"))
ENV = {**os.environ, "COLUMNS": "1000"}
ENV.pop("PREFECT_API_URL", None)


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def timed(args: list[str], env: dict | None = None) -> tuple[float, int, str]:
    t0 = time.monotonic()
    r = subprocess.run([GANSWEEP, *args], capture_output=True, text=True, env=env or ENV, timeout=900)
    out = (r.stdout + r.stderr).strip()
    first = next((ln for ln in out.splitlines() if ln.startswith("error:") or "stopped" in ln
                  or "finished in" in ln), out.splitlines()[0] if out else "")
    return time.monotonic() - t0, r.returncode, first


def corpus(tmp: Path) -> tuple[int, int]:
    """Every case of the test corpus through `gansweep validate` (in-process: the counts, not the time)."""
    import pytest

    r = pytest.main(["-q", "-p", "no:cacheprovider", str(ROOT / "tests" / "test_bad_inputs.py"), "-k",
                     "refused_naming or refused_like", f"--basetemp={tmp / 'pt'}"])
    from tests.test_bad_inputs import FILES, OVER, SETS

    total = len(OVER) + len(FILES) + len(SETS)
    return (total if r == 0 else -1), total


def wait_running(store: Path, sweep: str, p: subprocess.Popen) -> None:
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and p.poll() is None:
        rows = [pd.read_parquet(f) for f in store.glob(f"sweeps/{sweep}/trials/*.parquet")]
        if sum((r.status == "running").sum() for r in rows) and list(store.glob(f"sweeps/{sweep}/checkpoints/*/step-*")):
            return
        time.sleep(0.2)
    raise RuntimeError(f"trials of {sweep} never started")


def main() -> None:
    tmp = Path(tempfile.mkdtemp(prefix="gansweep-faults-"))

    def cfg(name: str, **over) -> str:
        (tmp / name).write_text(yaml.safe_dump(tiny_config(**over)))
        return str(tmp / name)

    ok = cfg("ok.yaml")
    rows = []
    add = lambda fault, r: rows.append((fault, *r))  # noqa: E731
    load0 = os.getloadavg()
    rejected, total = corpus(tmp)
    add("bad value (`train.z_dim: 1e12`) to `validate`", timed(["validate", cfg("z.yaml", train={"z_dim": 10**12})]))
    add("bad value to `run` (nothing starts)", timed(["run", cfg("z2.yaml", train={"z_dim": 10**12}), "--storage", str(tmp / "s0")]))
    add("dataset not in storage", timed(["run", cfg("m.yaml", dataset="mnist", model="dcgan-28"), "--storage", str(tmp / "s1")]))
    (tmp / "a-file").write_text("x")
    add("storage not writable", timed(["run", ok, "--storage", str(tmp / "a-file" / "store")]))
    add("resources above this machine", timed(["run", cfg("r.yaml", resources={"cpus_per_trial": 512}), "--storage", str(tmp / "s2")]))
    nocred = {k: v for k, v in ENV.items() if not k.startswith("AWS_")}
    nocred.update(AWS_EC2_METADATA_DISABLED="true", AWS_SHARED_CREDENTIALS_FILE=str(tmp / "none"), AWS_CONFIG_FILE=str(tmp / "none"))
    s3 = ["--storage", "s3://no-such-bucket/x", "--s3-endpoint-url", f"http://127.0.0.1:{_port()}"]
    add("S3 without credentials", timed(["run", ok, *s3], nocred))
    add("S3 endpoint unreachable", timed(["run", ok, *s3], {**ENV, "AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "x"}))

    store = tmp / "store"
    add("healthy tiny sweep (reference)", timed(["run", ok, "--storage", str(store), "--sweep-id", "t"]))
    lock = store / "sweeps" / "t" / "lock.json"
    lock.write_text('{"owner": "other-host:1:abc", "expires_at": %f}' % (time.time() + 600))
    add("sweep already running (exit 3)", timed(["run", ok, "--storage", str(store), "--sweep-id", "t"]))
    lock.unlink()
    metrics = sorted((store / "sweeps" / "t" / "metrics").glob("*.parquet"))[0]
    metrics.write_bytes(metrics.read_bytes()[:100])
    add("damaged metrics file: `report`", timed(["report", "t", "--storage", str(store)]))
    add("damaged metrics file: re-run repairs", timed(["run", ok, "--storage", str(store), "--sweep-id", "t"]))

    long = cfg("long.yaml", train={"steps": 200_000, "checkpoint_every": 100})
    p = subprocess.Popen([GANSWEEP, "run", long, "--storage", str(store), "--sweep-id", "c"], env=ENV,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    wait_running(store, "c", p)
    t0 = time.monotonic()
    p.send_signal(signal.SIGINT)
    out, _ = p.communicate(timeout=120)
    add("Ctrl-C: signal to exit", (time.monotonic() - t0, p.returncode,
                                    next((ln for ln in out.splitlines() if "marked interrupted" in ln), "")))
    k9 = cfg("k9.yaml", train={"steps": 3000, "checkpoint_every": 100})
    p = subprocess.Popen([GANSWEEP, "run", k9, "--storage", str(store), "--sweep-id", "k"], env=ENV,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_running(store, "k", p)
    p.kill()
    p.wait()
    add("kill -9, then the next run (cleans up, resumes, completes)", timed(["run", k9, "--storage", str(store), "--sweep-id", "k"]))

    load1 = os.getloadavg()
    lines = [f"# Faults: seconds to surface ({datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC)", "",
             "Regenerate: `.venv/bin/python bench/faults.py` (writes this file). Machine: "
             f"{os.cpu_count()} cores, no GPU; load average {load0[0]:.1f} before, {load1[0]:.1f} after "
             "(other work on the machine inflates every figure; the Ray and Prefect start-up dominate the runs).", "",
             f"**Bad-input corpus** (`tests/test_bad_inputs.py`): {rejected} of {total} refused by `gansweep validate` "
             "with exit 2, the field named, no traceback, nothing written.", "",
             "| fault | seconds | exit | first line printed |", "|---|---:|---:|---|"]
    lines += [f"| {f} | {s:.1f} | {rc} | `{first[:150].replace('|', '/')}` |" for f, s, rc, first in rows]
    Path(__file__).with_name("faults.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
