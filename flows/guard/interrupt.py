"""Ctrl-C on `gansweep run`: stop within seconds, say what was interrupted, leave nothing behind.

Without this, SIGINT unwinds through Prefect's engine, Ray's retry logic and the actor threads: the
run takes tens of seconds to die (or crashes), trials stay `running` in Parquet and the temporary
Prefect server or Ray daemons can outlive it. Here the first SIGINT (or SIGTERM) marks this sweep's
running trials `interrupted` (their checkpoints stay: a re-run of the sweep id resumes them), then
terminates every process this one started (Ray, the temporary API server) and exits 130.

kill -9 leaves no handler to run: Ray's daemons and the temporary API server outlive the run. Every
process a run starts inherits GANSWEEP_RUN=<pid>:<start time> of that run, so the next run (or
`gansweep cleanup`) finds the processes whose run is gone and stops them (clean_orphans). Ray's agents
and workers rename themselves (`ray::DashboardAgent`), which can overwrite the start of their
environment and the marker with it, and Ray's raylet and GCS may die with the run, leaving those
agents to init. Every Ray process keeps its session's log files open, and Ray names a session after
the pid of the process that started it (`session_<date>_<time>_<usec>_<pid>`): a process with a file
open in a session directory named in a dead run's daemons' command lines, or named after a dead
run's pid and dated after it started, is that run's too, as is any process below a dead run's one. The sweep lock of
a dead run on this host is taken over (flows/guard/lock.py) and its `running` trials resume.
"""
from __future__ import annotations

import os
import re
import signal
import threading
import time
from datetime import datetime, timezone

GRACE_SECONDS = 3.0  # SIGTERM, then SIGKILL whatever still runs
# Set by the handler before it stops anything: a trial task whose actor vanishes after this is one we
# stopped, not a failure, and must not write `failed` over what the handler writes. Process-wide, as a
# signal is.
STOPPING = threading.Event()
# Trial ids this process has handed to an actor and not yet heard back from (train.py): the only trials
# whose rows can say `running`, so the handler reads their rows alone, not a 10,000-trial sweep's.
IN_FLIGHT: set[str] = set()
_HANDLER = None  # the installed handler, for take_sigterm()
KILL_FIRST: set[int] = set()  # processes the handler SIGKILLs before the others: the temporary API server
RUN_ENV = "GANSWEEP_RUN"  # "<pid>:<start time>" of the `gansweep run` that started a process
# A Ray session directory in a daemon's command line (--session-dir=…, --log_dir=…/session_…/logs).
SESSION_DIR = re.compile(rb"(/[^\0\s=]*/session_\d{4}-\d\d-\d\d_[\d_-]+)")
# A session directory's name: its start (local time) and the pid of the process that started it.
SESSION_NAME = re.compile(r"/session_(\d{4}-\d\d-\d\d_\d\d-\d\d-\d\d)_\d+_(\d+)$")


def _start_time(pid: int) -> str | None:
    """The process's start time in clock ticks since boot: with the pid, it names one process (pids are reused)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def mark_run() -> None:
    """Every process started from now on (Ray, the Prefect API server) carries this run's name."""
    os.environ[RUN_ENV] = f"{os.getpid()}:{_start_time(os.getpid())}"


def orphans() -> dict[int, str]:
    """Live processes started by a run that no longer exists: {pid: that run's name}. Marked ones, then
    unmarked ones below them or holding a file in a dead run's Ray session directory (renamed agents)."""
    out, sessions, unmarked, dead = {}, {}, [], {}
    for pid in _pids():
        run = _marker(pid)
        if not run:
            unmarked.append(pid)
            continue
        rpid, _, start = run.partition(":")
        if rpid.isdigit() and start and _start_time(int(rpid)) != start and _alive(pid):
            out[pid] = dead[rpid] = run
            for d in SESSION_DIR.findall(_read(f"/proc/{pid}/cmdline")):
                sessions[os.path.realpath(d.decode())] = run
    for pid in list(out):
        for child in filter(_alive, descendants(pid)):
            out.setdefault(child, out[pid])
    for pid in unmarked if dead else []:
        dirs = {m.decode() for f in _open_files(pid) for m in SESSION_DIR.findall(f.encode())}
        run = next(filter(None, (sessions.get(d) or _session_of_dead_run(d, dead) for d in dirs)), None)
        if run and pid not in out and _alive(pid):
            out[pid] = run
    return out


def _session_of_dead_run(session_dir: str, dead: dict[str, str]) -> str | None:
    """The dead run that started this Ray session: named after its pid, dated after it started, and no
    process has that pid now (a live one may have started the session: a notebook's Ray, the test run's)."""
    m = SESSION_NAME.search(session_dir)
    run = dead.get(m.group(2)) if m else None
    if run is None or os.path.exists(f"/proc/{m.group(2)}"):  # that pid lives again: the session may be its
        return None
    made = datetime.strptime(m.group(1), "%Y-%m-%d_%H-%M-%S").timestamp()  # local time, as Ray writes it
    return run if made >= _boot_time() + int(run.partition(":")[2]) / os.sysconf("SC_CLK_TCK") - 2 else None


def _boot_time() -> float:
    with open("/proc/stat") as f:
        return float(next(line.split()[1] for line in f if line.startswith("btime ")))


def _pids() -> list[int]:
    return [int(e) for e in os.listdir("/proc") if e.isdigit() and int(e) != os.getpid()]


def _read(path: str) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError:  # gone, or another user's
        return b""


def _marker(pid: int) -> str | None:
    env = _read(f"/proc/{pid}/environ").split(b"\0")
    return next((v[len(RUN_ENV) + 1:].decode() for v in env if v.startswith(RUN_ENV.encode() + b"=")), None)


def _open_files(pid: int) -> list[str]:
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return []
    out = []
    for fd in fds:
        try:
            out.append(os.readlink(f"/proc/{pid}/fd/{fd}"))
        except OSError:
            pass
    return out


def clean_orphans(say) -> int:
    """Stop what killed runs left behind; say so. Returns how many processes were stopped."""
    found = orphans()
    if found:
        stop_processes(list(found))
        runs = sorted({r.split(":")[0] for r in found.values()})
        say(f"stopped {len(found)} process(es) left running by killed gansweep run(s) (pid {', '.join(runs)}): "
            "their Ray and temporary Prefect API server")
    return len(found)


def descendants(pid: int) -> list[int]:
    """Every live process below pid, from /proc (children first found, grandchildren after)."""
    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            parents.setdefault(ppid, []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        kids = parents.get(todo.pop(), [])
        out += kids
        todo += kids
    return out


def stop_processes(pids: list[int], first: signal.Signals = signal.SIGTERM) -> None:
    """SIGTERM, then SIGKILL to those alive after GRACE_SECONDS (first=SIGKILL: at once)."""
    for sig in (first, signal.SIGKILL) if first != signal.SIGKILL else (first,):
        for p in pids:
            try:
                os.kill(p, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + GRACE_SECONDS
        while sig == signal.SIGTERM and time.monotonic() < deadline and any(_alive(p) for p in pids):
            time.sleep(0.1)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def mark_interrupted(storage, sweep_id: str, since: datetime | None = None,
                     tids: set[str] | None = None) -> list[str]:
    """Rewrite this sweep's `running` trial rows as `interrupted`, and rows `failed` at or after
    `since` (the signal: their actor was stopped by us); returns their labels. tids: read only these
    trials' rows (those in flight), not every row of the sweep."""
    from gan_tasks.training.rows import write_trial_row

    folder = ("sweeps", sweep_id, "trials")
    done = []
    for name in storage.ls(*folder) if tids is None else sorted(f"{t}.parquet" for t in tids):
        try:
            row = storage.read_parquet(*folder, name).to_pylist()[-1]
        except Exception:  # noqa: BLE001 - a damaged row is the re-run's to repair, not ours
            continue
        ours = since is not None and row["status"] == "failed" and row["finished_at"] is not None \
            and row["finished_at"].replace(tzinfo=timezone.utc) >= since
        if row["status"] == "running" or ours:
            ckpts = [n for n in storage.ls("sweeps", sweep_id, "checkpoints", row["trial_id"]) if n.startswith("step-")]
            row.update(status="interrupted", finished_at=datetime.now(timezone.utc),
                       steps=max([int(n[5:14]) for n in ckpts], default=0),  # where a re-run resumes
                       error="interrupted (Ctrl-C); a re-run of this sweep id resumes it from its checkpoint")
            write_trial_row(storage, row)
            done.append(f"{row['loss']}/{row['optimizer']}/seed{row['seed']}")
    return done


def install(storage, sweep_id: str, say) -> None:
    """The handler for SIGINT and SIGTERM for the rest of this process (a `gansweep run`)."""

    def handler(signum, frame):  # noqa: ARG001
        global _HANDLER
        for sig in (signal.SIGINT, signal.SIGTERM):  # a second signal must not interrupt the cleanup
            signal.signal(sig, signal.SIG_IGN)
        _HANDLER = None
        STOPPING.set()
        since = datetime.now(timezone.utc)
        say(f"\n{signal.Signals(signum).name}: stopping sweep {sweep_id} (nothing new starts) ...")
        quiet_stderr()  # Ray's and Prefect's threads in this process cry out as their servers go
        stop_processes(list(KILL_FIRST), signal.SIGKILL)  # before its clients here cry out against it
        children = descendants(os.getpid())
        stop_processes(children)  # Ray's daemons and actors, the temporary Prefect API server
        try:
            labels = mark_interrupted(storage, sweep_id, since, set(IN_FLIGHT))
            say(f"{len(labels)} running trial(s) marked interrupted: {', '.join(labels) or '-'}; "
                f"re-run with --sweep-id {sweep_id} to resume them")
        except Exception as e:  # noqa: BLE001 - storage may be what failed; exit anyway
            say(f"could not mark the running trials interrupted: {type(e).__name__}: {e}")
        os._exit(130)

    global _HANDLER
    _HANDLER = handler
    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)


def take_sigterm() -> None:
    """SIGTERM back to the handler, inside a flow run: Prefect's engine installs its own for the run (it
    raises TerminationSignal through the flow, which then takes as long as Ctrl-C did before this module,
    and exits 1 or 143). A no-op without an installed handler or off the main thread."""
    if _HANDLER is not None and threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _HANDLER)


def quiet_stderr() -> None:
    """This process's stderr (fd 2, which C++ threads write too) to /dev/null from now on: what is said
    after a signal goes through `say` (stdout)."""
    import sys

    sys.stderr.flush()
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 2)
    os.close(null)
