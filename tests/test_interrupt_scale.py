"""Ctrl-C and SIGTERM on a sweep of 1,000 short trials (issue 28 item 6): exit 130 within 10 s, nothing on
stderr (no Ray "failed to connect to GCS", no Prefect websocket errors), no process left, and every trial
that did not complete resumable: no row, or an `interrupted` row at its last checkpoint's step."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from flows.guard.interrupt import _start_time, descendants
from tests.conftest import tiny_config
from tests.test_interrupt import _same_alive

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]
NOISE = ("Traceback", "Error", "error", "GCS", "websocket", "Exception", "WARNING", "Crash")


def _count(store: Path, folder: str) -> int:
    return len(list((store / "sweeps" / "big" / folder).glob("*.parquet")))


def _running(store: Path) -> bool:
    """Whether a trial's row says `running` (only the rows of trials not evaluated yet are read)."""
    sweep = store / "sweeps" / "big"
    evaluated = {f.stem for f in (sweep / "evaluations").glob("*.parquet")}
    return any((pd.read_parquet(f).status == "running").any() for f in (sweep / "trials").glob("*.parquet")
               if f.stem not in evaluated)


def _wait_trials(p: subprocess.Popen, store: Path, err: Path) -> None:
    """Until 10 trials are evaluated and one more is training."""
    deadline = time.monotonic() + 300
    while _count(store, "evaluations") < 10 or not _running(store):
        assert time.monotonic() < deadline and p.poll() is None, err.read_text()[-3000:]
        time.sleep(0.1)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_signal_at_1000_trials_exits_fast_and_clean_with_every_trial_resumable(tmp_path, sig):
    cfg = tiny_config(grid={"seed": list(range(500))}, train={"steps": 500, "checkpoint_every": 50})  # 1,000 trials; one is mid-training at the signal
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(cfg))
    store = tmp_path / "store"
    env = {**os.environ, "PREFECT_HOME": str(tmp_path / "prefect"), "PYTHONPATH": str(ROOT)}
    env.pop("PREFECT_API_URL", None)
    stdout, stderr = open(tmp_path / "out", "w+"), open(tmp_path / "err", "w+")  # files: a full pipe would block it
    p = subprocess.Popen([sys.executable, "-m", "flows.cli", "run", str(tmp_path / "c.yaml"), "--storage", str(store),
                          "--sweep-id", "big"], cwd=ROOT, stdout=stdout, stderr=stderr, text=True, env=env,
                         preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        _wait_trials(p, store, tmp_path / "err")
    except BaseException:
        p.send_signal(signal.SIGINT)  # the run stops its Ray and API server itself
        p.wait(timeout=60)
        raise
    children = {c: _start_time(c) for c in descendants(p.pid)}
    t0 = time.monotonic()
    p.send_signal(sig)
    p.wait(timeout=60)
    took = time.monotonic() - t0
    out, err = (tmp_path / "out").read_text(), (tmp_path / "err").read_text()
    print(f"{sig.name} to exit: {took:.1f} s; stderr's last lines:\n" + "\n".join(err.splitlines()[-5:]))
    assert p.returncode == 130 and took < 10, (p.returncode, took, out[-2000:], err[-2000:])
    assert "marked interrupted" in out and "Traceback" not in out
    noise = [line for line in err.splitlines() if any(w in line for w in NOISE)]
    assert not noise, err[-3000:]  # a clean terminal: Prefect's and Ray's ordinary log lines only
    time.sleep(1)
    assert not _same_alive(children), "processes left behind"
    rows = pd.concat(pd.read_parquet(f) for f in (store / "sweeps" / "big" / "trials").glob("*.parquet"))
    assert set(rows.status) <= {"completed", "interrupted"} and (rows.status == "interrupted").any()
    for r in rows[rows.status == "interrupted"].itertuples():
        ckpts = sorted((store / "sweeps" / "big" / "checkpoints" / r.trial_id).glob("step-*.pt"))
        assert r.steps == (int(ckpts[-1].name[5:14]) if ckpts else 0), r  # resumes where its checkpoint is
