"""P6 growth: how the cost of a sweep grows with its number of trials (issue 28). The same ultra-short ring-8
MLP trials (~0.2 s of bare loop each, at least 10 steps) at 64, 256 and 1,024 trials (more when named: 4,096,
10,000), each through `gansweep run` in a subprocess with the embedded defaults (temporary Prefect API, local
Ray), timed from command start to exit. Per size:

- `p6_ratio_N`: wall / ideal, the ideal being the trials as bare loops at the flow's concurrency
  (harness.bare_concurrent) on a sample of 8 per slot, before and after, scaled to N trials;
- `p6_overhead_s_N` (wall - ideal) and `p6_marginal_s_N`: (overhead(N) - overhead(previous N)) / (N - previous N),
  the extra seconds each further trial costs;
- `p6_driver_rss_mb_N`, `p6_api_rss_mb_N`: peak resident memory (VmHWM) of the driver and of the Prefect API;
  `p6_driver_cpu_ms_N`: the driver's CPU per trial (user + system, all its threads); `p6_driver_threads_N`: its
  peak number of threads;
- `p6_objects_N`: storage objects under the sweep; `p6_fan_in_s_N`: last trial done to report written;
- `p6_report_s_N`, `p6_report_mb_N`: a rebuild of rankings and report from storage (in this process), and
  the size of report/index.html;
- `p6_db_rows_N`, `p6_db_<table>_N` (task_run, task_run_state, artifact, log, events): rows in the Prefect
  database the run left (each run has a PREFECT_HOME of its own, so a fresh database).

Acceptance: none asserted (a measurement); goal (issue 28): `p6_marginal_s_*` flat from 64 to 10,000 trials.
Theoretical minimum: ratio 1.0; marginal seconds per trial: the storage writes and the few API calls of one
trial (~0.01 s here); driver memory and report build linear in trials at most.

    python -m bench.p6_growth STORAGE [N ...] [--before CHECKOUT [--before-at N,N]] [--steps S] [--profile DIR]
        [--tune-at N,N] [--cluster W]

--before: another checkout's `gansweep run` (the code before a change) at the largest size (or at each size
of --before-at) too, right before this checkout's, in the same run: its keys end in `_before`.
--tune-at: Ray Tune (bench/tune_trials.py, the same trials as bare loops, 1 CPU each) at those sizes, right
before this checkout's run, against the same ideal: keys `p6_ratio_N_tune`, `p6_wall_s_N_tune`.
--cluster W: every run on a loopback cluster (bench/loopback_cluster.py) of W worker nodes of 1 CPU, through
`--ray-address` (keys end in `_cluster`), the ideal at W at once.
--steps: steps per trial (default: growth_steps' calibration). --profile DIR: `py-spy record` of each run's
driver (raw folded stacks, DIR/p6-N[-before].txt; py-spy from PyPI).
"""
from __future__ import annotations

import contextlib
import os
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime, timezone

import yaml

from bench.harness import Figure, bare_concurrent, bare_loop, bench_config, load_data, trials_of
from bench.loopback_cluster import LoopbackCluster
from bench.p5_many_trials import ROOT, _env
from bench.p5_tune import ray_tune_run
from gan_tasks.data.storage import Storage

SIZES = (64, 256, 1024)


def growth_steps(storage: Storage) -> int:
    """Generator steps of ~0.2 s of bare loop here, at least 10 (the same at every size of one run)."""
    probe = trials_of(bench_config(200, 1))[0]
    return max(10, int(0.2 * 200 / bare_loop(probe, load_data(storage, probe))))


def growth_config(steps: int, n: int) -> dict:
    """n trials (2 losses x n/2 seeds) of `steps` steps; small evaluation, one checkpoint."""
    raw = bench_config(steps, n // 2)
    raw["train"].update(checkpoint_every=steps, log_every=max(1, steps // 4))
    return raw


def _status(pid: int, key: str) -> float:
    """A /proc/PID/status field (VmHWM in kB, Threads); 0 once the process is gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            return float(next(line.split()[1] for line in f if line.startswith(key + ":")))
    except (OSError, StopIteration):
        return 0.0


def _cpu_s(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rpartition(")")[2].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime
    except (OSError, IndexError):
        return 0.0


def _watch(proc: subprocess.Popen, peaks: dict) -> None:
    """Peak memory, threads and CPU so far of the driver, and peak memory of its Prefect API server (a child
    running uvicorn), every half second."""
    import psutil

    while proc.poll() is None:
        peaks["driver"] = max(peaks["driver"], _status(proc.pid, "VmHWM") / 1024)
        peaks["threads"] = max(peaks["threads"], _status(proc.pid, "Threads"))
        peaks["cpu"] = max(peaks["cpu"], _cpu_s(proc.pid))
        try:
            for c in psutil.Process(proc.pid).children():
                if "uvicorn" in " ".join(c.cmdline()):
                    peaks["api"] = max(peaks["api"], _status(c.pid, "VmHWM") / 1024)
        except psutil.Error:
            pass
        time.sleep(0.5)


DB_TABLES = ("task_run", "task_run_state", "artifact", "log", "events")


def db_rows(home: str) -> dict[str, float]:
    """Rows per table of the Prefect database under PREFECT_HOME `home` ({} without one): DB_TABLES and `rows`,
    all tables together."""
    path = os.path.join(home, "prefect.db")
    if not os.path.exists(path):
        return {}
    with sqlite3.connect(path) as db:
        names = [r[0] for r in db.execute("select name from sqlite_master where type='table'")]
        counts = {n: float(db.execute(f'select count(*) from "{n}"').fetchone()[0]) for n in names}
    return {**{t: counts.get(t, 0.0) for t in DB_TABLES}, "rows": sum(counts.values())}


def run_watched(raw: dict, storage: Storage, sweep_id: str, checkout: str = ROOT,
                profile: str | None = None, cluster=None) -> tuple[float, datetime, dict]:
    """_run_watched, again (at most 5 times more, 20 s apart) where Ray's own start timed out: on a machine
    loaded by other work its dashboard agent can take longer to start than its raylet waits, before any trial."""
    for attempt in range(6):
        try:
            return _run_watched(raw, storage, sweep_id, checkout, profile, cluster)
        except RuntimeError as e:
            if "timed out during startup" not in str(e) or attempt == 5:
                raise
            print(f"# {sweep_id}: Ray's start timed out (load {os.getloadavg()[0]:.1f}); again", flush=True)
            time.sleep(20)


def _run_watched(raw: dict, storage: Storage, sweep_id: str, checkout: str = ROOT,
                 profile: str | None = None, cluster=None) -> tuple[float, datetime, dict]:
    """`gansweep run` of this config in a subprocess of `checkout`, with a PREFECT_HOME (so a Prefect database)
    of its own: (wall seconds, UTC start, peaks and the database's row counts). profile: py-spy's output file;
    cluster: a LoopbackCluster to run on (`--ray-address`) instead of the run's own local Ray."""
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
        yaml.safe_dump(raw, f)
    cmd = [sys.executable, "-m", "flows.cli", "run", f.name, "--storage", storage.url, "--sweep-id", sweep_id]
    env = _env(checkout)
    if cluster is not None:
        cmd += ["--ray-address", cluster.address]
        env.update({k: cluster.env[k] for k in ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN")})
    peaks = {"driver": 0.0, "api": 0.0, "threads": 0.0, "cpu": 0.0}
    start, t0 = datetime.now(timezone.utc), time.perf_counter()
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryDirectory() as home:
        proc = subprocess.Popen(cmd, cwd=checkout, env={**env, "PREFECT_HOME": home}, stdout=out,
                                stderr=subprocess.STDOUT, text=True)
        spy = subprocess.Popen(["py-spy", "record", "--nonblocking", "-r", "20", "-f", "raw", "-o", profile,
                                "--pid", str(proc.pid)], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL) if profile else None
        watcher = threading.Thread(target=_watch, args=(proc, peaks), daemon=True)
        watcher.start()
        rc = proc.wait()
        wall = time.perf_counter() - t0
        watcher.join()
        if spy is not None:
            spy.wait(timeout=120)
        os.unlink(f.name)
        if rc:
            out.seek(0)
            raise RuntimeError(f"{' '.join(cmd)} exited {rc}:\n{out.read()[-3000:]}")
        peaks["db"] = db_rows(home)
    return wall, start, peaks


def _tune_figures(n: int, wall: float, ideal: float) -> tuple[list[Figure], float]:
    import ray

    return [Figure(f"p6_ratio_{n}_tune", wall / ideal, f"P6 Ray Tune {ray.__version__} wall / ideal ({n} trials, same ideal)"),
            Figure(f"p6_wall_s_{n}_tune", wall, f"P6 Ray Tune seconds ({n} trials)"),
            Figure(f"p6_ideal_s_{n}_tune", ideal, f"P6 ideal seconds ({n} trials, Ray Tune's run)")], wall - ideal


def bench_size(storage: Storage, raw: dict, n_slots: int, run_id: str, checkout: str = ROOT,
               tag: str = "", profile: str | None = None, cluster=None) -> tuple[list[Figure], float]:
    """The figures of one size (keys end in the size, then `tag`), and its overhead seconds."""
    from gan_tasks.evaluation.report import rebuild

    trials = trials_of(raw)
    n = len(trials)
    data = load_data(storage, trials[0])
    sample = trials[:: max(1, n // (8 * n_slots))][: 8 * n_slots]
    before, _ = bare_concurrent(sample[::2], data, n_slots)
    sid = f"bench-p6-{n}{tag.replace('_', '-')}-{run_id}"
    spy = os.path.join(profile, f"p6-{n}{tag.replace('_', '-')}.txt") if profile else None
    if tag == "_tune":
        with tempfile.TemporaryDirectory() as tmp:
            wall = ray_tune_run(raw, storage, tmp)
    else:
        wall, start, peaks = run_watched(raw, storage, sid, checkout, spy, cluster)
    after, _ = bare_concurrent(sample[1::2], data, n_slots)
    ideal = (before + after) * n / len(sample)
    if tag == "_tune":
        return _tune_figures(n, wall, ideal)
    rows = storage.read_table("sweeps", sid, "trials").to_pandas()
    assert (rows.status == "completed").sum() == n, rows.status.value_counts()
    report = storage.uri("sweeps", sid, "report", "index.html")
    fan_in = storage.fs.modified(report).timestamp() - rows.finished_at.max().timestamp()
    objects = len(storage.fs.find(storage.uri("sweeps", sid)))
    t0 = time.perf_counter()
    rebuild(storage, sid)
    build = time.perf_counter() - t0
    n_ = f"{n}{tag}"
    what = f"{n} trials" + (f", {checkout}" if "_before" in tag else "") + (
        f", loopback cluster of {len(cluster.workers)} nodes" if cluster else "")
    return [Figure(f"p6_ratio_{n_}", wall / ideal, f"P6 wall / ideal ({what}; ideal: bare loops {n_slots} at once)"),
            Figure(f"p6_wall_s_{n_}", wall, f"P6 sweep seconds ({what})"),
            Figure(f"p6_ideal_s_{n_}", ideal, f"P6 ideal seconds ({what})"),
            Figure(f"p6_overhead_s_{n_}", wall - ideal, f"P6 overhead seconds ({what})"),
            Figure(f"p6_driver_cpu_ms_{n_}", 1000 * peaks["cpu"] / n, f"P6 driver CPU ms per trial ({what})"),
            Figure(f"p6_driver_threads_{n_}", peaks["threads"], f"P6 driver peak threads ({what})"),
            Figure(f"p6_driver_rss_mb_{n_}", peaks["driver"], f"P6 driver peak RSS MB ({what})"),
            Figure(f"p6_api_rss_mb_{n_}", peaks["api"], f"P6 Prefect API peak RSS MB ({what})"),
            Figure(f"p6_objects_{n_}", float(objects), f"P6 storage objects written ({what})"),
            Figure(f"p6_fan_in_s_{n_}", fan_in, f"P6 fan-in seconds: last trial done to report written ({what})"),
            Figure(f"p6_report_s_{n_}", build, f"P6 rankings + report rebuild seconds ({what})"),
            Figure(f"p6_report_mb_{n_}", storage.fs.size(report) / 2**20, f"P6 report/index.html MB ({what})"),
            *[Figure(f"p6_db_{t}_{n_}", v, f"P6 Prefect database rows, {'all tables' if t == 'rows' else t} ({what})")
              for t, v in peaks["db"].items()]], wall - ideal


def bench_growth(storage: Storage, sizes: tuple[int, ...], n_slots: int, run_id: str, emit=print,
                 before: str | None = None, before_at: tuple[int, ...] = (), steps: int | None = None,
                 profile: str | None = None, tune_at: tuple[int, ...] = (), cluster=None) -> list[Figure]:
    figures, prev, steps = [], None, steps or growth_steps(storage)
    emit(Figure("p6_steps", float(steps), "P6 steps per trial"))
    for n in sizes:
        raw = growth_config(steps, n)
        if before and n in (before_at or (max(sizes),)):
            old, _ = bench_size(storage, raw, n_slots, run_id, before, "_before" + ("_cluster" if cluster else ""),
                                profile, cluster)
            for f in old:
                emit(f)
            figures += old
        if n in tune_at:
            tuned, _ = bench_size(storage, raw, n_slots, run_id, tag="_tune")
            for f in tuned:
                emit(f)
            figures += tuned
        new, overhead = bench_size(storage, raw, n_slots, run_id, tag="_cluster" if cluster else "", profile=profile,
                                   cluster=cluster)
        if prev is not None:
            new.append(Figure(f"p6_marginal_s_{n}{'_cluster' if cluster else ''}", (overhead - prev[1]) / (n - prev[0]),
                              f"P6 extra overhead seconds per trial, {prev[0]} -> {n} trials"))
        prev = (n, overhead)
        for f in new:
            emit(f)
        figures += new
    return figures


if __name__ == "__main__":
    import torch

    from gan_tasks.config import utc_stamp

    torch.set_num_threads(1)  # one CPU per trial, as the actors get
    args = sys.argv[1:]

    def option(name: str) -> str | None:
        return args[args.index(name) + 1] if name in args else None

    old, at, steps, profile = option("--before"), option("--before-at"), option("--steps"), option("--profile")
    tune_at = tuple(int(x) for x in (option("--tune-at") or "").split(",") if x)
    workers = int(option("--cluster") or 0)
    ns = tuple(int(a) for i, a in enumerate(args) if i and a.isdigit() and not args[i - 1].startswith("--")) or SIZES
    cpus = workers or os.cpu_count() or 1  # one slot a CPU: `gansweep run`'s local Ray's, or a node's
    if profile:
        os.makedirs(profile, exist_ok=True)
    stamp = lambda: datetime.now(timezone.utc).strftime("%H:%M:%S")  # noqa: E731
    with contextlib.ExitStack() as stack:
        cluster = stack.enter_context(LoopbackCluster(workers=workers, cpus=1)) if workers else None
        bench_growth(Storage.parse(args[0]), ns, cpus, utc_stamp(),
                     lambda f: print(f"{f.key} = {f.value:.3f}  ({f.label})  [load {os.getloadavg()[0]:.1f}, "
                                     f"{stamp()}]", flush=True),
                     os.path.abspath(old) if old else None, tuple(int(x) for x in at.split(",")) if at else (),
                     int(steps) if steps else None, os.path.abspath(profile) if profile else None, tune_at, cluster)
