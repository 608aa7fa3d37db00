"""Ctrl-C on `gansweep run` (issue 16 item 4): exit 130 within 10 s, running trials marked
`interrupted` at their last checkpoint's step, no process the run started left alive, and a re-run
of the sweep id resumes them."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from flows.guard.interrupt import _alive, _marker, _open_files, _read, _start_time, descendants
from tests.conftest import tiny_config

pytestmark = pytest.mark.slow
GANSWEEP = str(Path(sys.executable).with_name("gansweep"))


def _running(store: Path) -> int:
    rows = [pd.read_parquet(f) for f in store.glob("sweeps/*/trials/*.parquet")]
    return sum((r.status == "running").sum() for r in rows)


def _wait_training(p: subprocess.Popen, store: Path, sweep: str, running: int) -> None:
    """Until `running` trials of the sweep train and one has checkpointed; the run's output if it exits first."""
    deadline = time.monotonic() + 120
    while _running(store) < running or not list(store.glob(f"sweeps/{sweep}/checkpoints/*/step-*.pt")):
        assert time.monotonic() < deadline, "the trials never started"
        assert p.poll() is None, p.stdout.read()[-3000:]
        time.sleep(0.2)


def test_ctrl_c_stops_fast_marks_trials_and_leaves_nothing_behind(tmp_path):
    cfg = tiny_config(train={"steps": 200_000, "checkpoint_every": 100})  # far longer than the test waits
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(cfg))
    store = tmp_path / "store"
    env = {**os.environ, "PREFECT_HOME": str(tmp_path / "prefect")}
    env.pop("PREFECT_API_URL", None)
    p = subprocess.Popen([GANSWEEP, "run", str(tmp_path / "c.yaml"), "--storage", str(store), "--sweep-id", "cc"],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
                         preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))  # as in a terminal
    _wait_training(p, store, "cc", 2)
    children = descendants(p.pid)
    assert children, "Ray and the temporary Prefect server run as children of the run"
    t0 = time.monotonic()
    p.send_signal(signal.SIGINT)  # to the run alone: it must stop its children itself
    out, _ = p.communicate(timeout=30)
    took = time.monotonic() - t0
    print(f"Ctrl-C to exit: {took:.1f} s")
    assert p.returncode == 130 and took < 10, out[-2000:]
    assert "marked interrupted" in out and "Traceback" not in out
    time.sleep(1)
    alive = [c for c in children if Path(f"/proc/{c}").exists()
             and Path(f"/proc/{c}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"]
    assert not alive, f"left behind: {alive}"
    rows = pd.concat(pd.read_parquet(f) for f in store.glob("sweeps/cc/trials/*.parquet"))
    assert set(rows.status) == {"interrupted"} and (rows.steps % 100 == 0).all() and (rows.steps > 0).any()
    assert rows.error.str.contains("resumes it from its checkpoint").all()


def _same_alive(procs: dict[int, str]) -> list[int]:
    """The processes of {pid: start time} still alive (not zombies), and not a later process with a reused pid."""
    return [c for c, start in procs.items() if _start_time(c) == start and _alive(c)]


def _describe(pid: int) -> str:
    """What a failure needs to say about a survivor: its name, parent, marker and Ray session files."""
    name = _read(f"/proc/{pid}/cmdline").split(b"\0")[0].decode(errors="replace")
    ppid = _read(f"/proc/{pid}/stat").rsplit(b")", 1)[-1].split()[1:2]
    files = [f for f in _open_files(pid) if "session_" in f][:1]
    return f"{name} ppid={ppid} marker={_marker(pid)} session files={files}"


def test_kill_9_leaves_nothing_the_next_run_cannot_clean_up(tmp_path):
    """kill -9 runs no handler: the next run stops what it left (Ray, the Prefect API server), takes
    over its sweep lock and resumes its `running` trials from their checkpoints."""
    cfg = tiny_config(train={"steps": 3000, "checkpoint_every": 100})
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(cfg))
    store = tmp_path / "store"
    env = {**os.environ, "PREFECT_HOME": str(tmp_path / "prefect")}
    env.pop("PREFECT_API_URL", None)
    env.pop("GANSWEEP_RUN", None)  # an in-process CLI test of this session may have named the test process
    cmd = [GANSWEEP, "run", str(tmp_path / "c.yaml"), "--storage", str(store), "--sweep-id", "k9"]
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    _wait_training(p, store, "k9", 1)
    children = {c: _start_time(c) for c in descendants(p.pid)}  # pid and start time: one process (pids are reused)
    p.kill()
    p.wait(timeout=30)
    time.sleep(1)
    assert _same_alive(children), "premise: after kill -9 the run's Ray and Prefect server outlive it"
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    out = r.stdout + r.stderr
    assert r.returncode == 0, out[-3000:]
    assert "left running by killed gansweep run(s)" in out and "Traceback" not in out, out[-3000:]
    left = {c: _describe(c) for c in _same_alive(children)}
    assert not left, f"the killed run's processes still alive after the next run: {left}\n{out[-2000:]}"
    rows = pd.concat(pd.read_parquet(f) for f in store.glob("sweeps/k9/trials/*.parquet"))
    assert (rows.status == "completed").all() and len(rows) == 2 and (rows.steps == 3000).all()
    metrics = pd.read_parquet(store / "sweeps" / "k9" / "metrics")  # resumed: each logged step once, none lost
    for tid, steps in metrics.groupby("trial_id").step:
        assert sorted(steps) == list(range(10, 3001, 10)), tid
