"""A re-run of a finished sweep, decided from storage alone: no Ray, no Prefect API, no flow run.

`gansweep run` asks `finished()` first. The sweep is finished when its config.yaml means the same
trials, no run holds its lock, a search's confirm stage has chosen its trials, and every trial is done (`completed` or `stopped`) with its trial
row, metric files and final evaluation reading back: the same damage checks the flow makes
(storage.read_parquet), but read-only here. Anything missing or damaged and the answer is None:
the full flow runs, which moves damaged files to quarantine/ and redoes what they held, as before.
A report missing or older than the files it is built from is rebuilt (rankings + index.html).
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from gan_tasks.config import SweepConfig, expand_grid, same_trials
from gan_tasks.data.schema import DONE
from gan_tasks.data.storage import DamagedFile, Storage

# Reads in flight at once: object storage answers each small GET in tens of ms; a few in parallel
# hide that latency without a burst a rate limit would notice.
READERS = 8


def _trial_done(storage: Storage, sweep_id: str, tid: str, metric_files: list[str], evaluated: set[str]) -> dict | None:
    """The trial's last row if it is done and each of its files reads back; None otherwise."""
    base = ("sweeps", sweep_id)
    if f"{tid}.parquet" not in evaluated:
        return None
    try:
        rows = storage.read_parquet(*base, "trials", f"{tid}.parquet").to_pylist()
        if not rows or rows[-1]["status"] not in DONE:
            return None
        storage.read_parquet(*base, "evaluations", f"{tid}.parquet")
        for name in metric_files:
            storage.read_parquet(*base, "metrics", name)
    except (DamagedFile, FileNotFoundError):
        return None
    return rows[-1]


def finished(storage: Storage, sweep: SweepConfig, sweep_id: str) -> dict | None:
    """{"counts", "report", "rebuilt"} when every trial of this sweep is done and verified; else None."""
    base = ("sweeps", sweep_id)
    if not storage.exists(*base, "config.yaml") or storage.exists(*base, "lock.json"):
        return None  # a new sweep, or one that a run holds (or died holding): the flow decides
    if not same_trials(storage.read_bytes(*base, "config.yaml"), sweep):
        return None  # another sweep under this id: the flow refuses it with its message
    tids = [t.trial_id for t in expand_grid(sweep)]
    if sweep.search is not None and sweep.search.sampler == "tpe":  # and its rounds' trials, once all were asked
        searched = _stage_ids(storage, sweep_id, "search")
        if len(searched) < len(tids) // sweep.search.n_startup * sweep.search.budget:
            return None
        tids = searched
    if sweep.search is not None and sweep.search.confirm_seeds:  # and the confirm stage's, once it has chosen
        confirm = _stage_ids(storage, sweep_id, "confirm")
        if not confirm:
            return None
        tids += confirm
    metrics = storage.ls(*base, "metrics")
    evaluated = set(storage.ls(*base, "evaluations"))
    by_trial: dict[str, list[str]] = {t: [] for t in tids}
    for name in metrics:
        tid = name.rsplit("-", 1)[0]
        if tid in by_trial:
            by_trial[tid].append(name)
    with ThreadPoolExecutor(READERS) as pool:
        rows = list(pool.map(lambda t: _trial_done(storage, sweep_id, t, by_trial[t], evaluated), tids))
    if any(r is None for r in rows):
        return None
    counts: dict[str, int] = {}
    for r in rows:
        counts[r["status"]] = counts.get(r["status"], 0) + 1
    rebuilt = _stale(storage, sweep_id, [f"{t}.parquet" for t in tids])
    if rebuilt:
        from gan_tasks.evaluation.report import rebuild

        rebuild(storage, sweep_id)
    return {"counts": counts, "report": storage.uri(*base, "report", "index.html"), "rebuilt": rebuilt}


def _stage_ids(storage: Storage, sweep_id: str, stage: str) -> list[str]:
    """A search stage's trials ('search', 'confirm'), as its settings table (flows/run/search.py) names them."""
    path = ("sweeps", sweep_id, "search", "settings.parquet")
    if not storage.exists(*path):
        return []
    rows = storage.read_parquet(*path).to_pylist()
    return [r["trial_id"] for r in rows if r["stage"] == stage]


def _stale(storage: Storage, sweep_id: str, names: list[str]) -> bool:
    """Whether report/index.html is missing or older than a trial row, final evaluation or the rankings."""
    report = _mtimes(storage, sweep_id, "report").get("index.html")
    rankings = _mtimes(storage, sweep_id, "rankings").get("rankings.parquet")
    if report is None or rankings is None:
        return True
    sources = [rankings, *(m for folder in ("trials", "evaluations")
                           for n, m in _mtimes(storage, sweep_id, folder).items() if n in names)]
    return max(sources) > report


def _mtimes(storage: Storage, sweep_id: str, folder: str) -> dict[str, float]:
    """Modification times (POSIX seconds) of a sweep folder's files, from one listing."""
    try:
        entries = storage.fs.ls(storage.uri("sweeps", sweep_id, folder), detail=True)
    except FileNotFoundError:
        return {}
    out = {}
    for e in entries:
        t = e.get("mtime") if "mtime" in e else e.get("LastModified")  # local: float; S3: a datetime
        out[e["name"].rstrip("/").rsplit("/", 1)[-1]] = t.timestamp() if hasattr(t, "timestamp") else float(t or 0)
    return out
