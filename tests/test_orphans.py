"""After kill -9 of a run, the next run finds what that run started (flows/guard/interrupt.py: orphans) and
nothing else: marked processes, and unmarked ones holding files in a dead run's Ray session directory
(Ray's renamed agents can lose the marker with the start of their environment). Real processes."""
import os
import subprocess
import sys
import time

from flows.guard.interrupt import RUN_ENV, _alive, _start_time, clean_orphans, orphans

SLEEPER = "import sys, time; f = open(sys.argv[1], 'a'); print('up', flush=True); time.sleep(120)"


def _start(path, env_run: str | None, *extra: str) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k != RUN_ENV}
    if env_run:
        env[RUN_ENV] = env_run
    p = subprocess.Popen([sys.executable, "-c", SLEEPER, str(path), *extra], env=env, stdout=subprocess.PIPE, text=True)
    assert p.stdout.readline().strip() == "up"  # its file is open
    return p


def test_the_next_run_stops_a_dead_runs_processes_and_nothing_else(tmp_path):
    dead_run = f"{os.getpid()}:0"  # this pid with another start time: a run that is gone, its pid reused
    live_run = f"{os.getpid()}:{_start_time(os.getpid())}"
    dead, other = tmp_path / "session_2026-01-01_00-00-00_000001_4242", tmp_path / "session_2026-01-01_00-00-00_000002_4343"
    for d in (dead, other):
        (d / "logs").mkdir(parents=True)
    procs = {
        "daemon of the dead run": _start(dead / "logs" / "gcs.out", dead_run, f"--session-dir={dead}"),
        "its agent, marker lost": _start(dead / "logs" / "agent.out", None),
        "another Ray on the machine": _start(other / "logs" / "agent.out", None),
        "a live run's process": _start(other / "logs" / "raylet.out", live_run, f"--session-dir={other}"),
    }
    said = []
    try:
        found = {name for name, p in procs.items() if p.pid in orphans()}
        assert found == {"daemon of the dead run", "its agent, marker lost"}
        assert clean_orphans(said.append) >= 2, said  # (and any other killed run's leftovers on this machine)
        time.sleep(0.2)
        alive = {name for name, p in procs.items() if _alive(p.pid) and p.poll() is None}
        assert alive == {"another Ray on the machine", "a live run's process"}
        assert f"{os.getpid()}" in said[0] and "left running by killed gansweep run(s)" in said[0]
        assert not {p.pid for p in procs.values()} & set(orphans())  # nothing of ours left to find
    finally:
        for p in procs.values():
            p.kill()
            p.wait()


def test_agents_of_a_dead_run_whose_raylet_died_too_are_found_by_their_session_name(tmp_path):
    """Seen in CI: after kill -9 the raylet and GCS died with the run; its renamed agents (marker lost,
    parent init) and the marked API server outlived it. Ray names the session after the pid that started
    it: the agents hold files in a session named after the dead run's pid, dated after that run started."""
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone_run = f"{gone.pid}:{_start_time(gone.pid)}"
    gone.wait()  # a run that existed, now gone (its pid free)
    now = time.strftime("%Y-%m-%d_%H-%M-%S")
    ours = tmp_path / f"session_{now}_000001_{gone.pid}"
    older = tmp_path / f"session_2000-01-01_00-00-00_000002_{gone.pid}"  # same pid, long before that run
    for d in (ours, older):
        (d / "logs").mkdir(parents=True)
    procs = {
        "the API server of the dead run": _start(tmp_path / "server.log", gone_run),
        "its agent, marker lost": _start(ours / "logs" / "raylet.out", None),
        "an older session's agent with that pid": _start(older / "logs" / "raylet.out", None),
    }
    # A dead run's pid that lives again (here: this test process, `<pid>:0` being a dead run's marker) may have
    # started its own Ray since: its session's processes are never taken for the dead run's.
    mine = tmp_path / f"session_{now}_000003_{os.getpid()}"
    (mine / "logs").mkdir(parents=True)
    procs["a dead run's marked process"] = _start(tmp_path / "x.log", f"{os.getpid()}:0")
    procs["a live process's Ray, its pid once a dead run's"] = _start(mine / "logs" / "raylet.out", None)
    try:
        found = {name for name, p in procs.items() if p.pid in orphans()}
        assert found == {"the API server of the dead run", "its agent, marker lost", "a dead run's marked process"}
    finally:
        for p in procs.values():
            p.kill()
            p.wait()


def test_what_a_dead_runs_process_started_is_that_runs_too(tmp_path):
    parent = subprocess.Popen([sys.executable, "-c", "import subprocess, sys, time; "
                               "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(120)'], env={}); "
                               "print('up', flush=True); time.sleep(120)"],
                              env={**os.environ, RUN_ENV: f"{os.getpid()}:0"}, stdout=subprocess.PIPE, text=True)
    try:
        assert parent.stdout.readline().strip() == "up"
        found = orphans()
        kids = [pid for pid, run in found.items() if run == f"{os.getpid()}:0" and pid != parent.pid]
        assert parent.pid in found and len(kids) == 1, found  # the child has no marker (empty environment)
        clean_orphans(lambda _: None)
        time.sleep(0.2)
        assert not _alive(kids[0])
    finally:
        parent.kill()
        parent.wait()
