"""What storage says about one trial of a running sweep: done and readable, evaluated, forgotten (--force),
or failed after training; a damaged file is moved to quarantine/ and its trial redone."""
from __future__ import annotations

import threading

from prefect import get_run_logger

from gan_tasks.config import TrialConfig
from gan_tasks.config.early_stop import forget_rungs
from gan_tasks.data.schema import DONE
from gan_tasks.data.storage import DamagedFile, Storage


class Listing:
    """A folder of a sweep listed once per run, its names by trial id, shared by the run's task-run threads:
    a re-run of N trials would otherwise list the folder, N trials' files, once per trial. Names written
    after the listing are not in it: it serves checks of what an earlier run left."""

    def __init__(self, storage: Storage, sweep_id: str, folder: str):
        self.parts, self.storage = ("sweeps", sweep_id, folder), storage
        self._by_tid: dict[str, list[str]] | None = None
        self._lock = threading.Lock()

    def names(self, tid: str) -> list[str]:
        """The folder's names that start with this trial id."""
        with self._lock:
            if self._by_tid is None:
                self._by_tid = {}
                for n in self.storage.ls(*self.parts):
                    self._by_tid.setdefault(n[:len(tid)], []).append(n)  # trial ids have one length
        return self._by_tid.get(tid, [])


def completed(storage: Storage, sweep_id: str, tid: str, metrics: Listing | None = None) -> bool:
    """Whether a re-run may skip this trial, verified: its own row and metric files must read back
    (O(files of this trial), not the whole sweep). A damaged trial row is moved to quarantine/ and
    the trial resumes from its checkpoint (it completes at once, rewriting the row); a damaged metrics
    file cannot be rebuilt from a checkpoint that comes after it, so the trial's files are moved
    aside and it retrains from step 0, deterministically: the same rows as before the damage.
    Its final evaluation is checked apart (`evaluated`). metrics: the metrics folder listed once for the
    run (else listed here)."""
    logger = get_run_logger()
    path = ("sweeps", sweep_id, "trials", f"{tid}.parquet")
    if not storage.exists(*path):
        return False
    try:
        rows = storage.read_parquet(*path).to_pylist()
    except DamagedFile as e:
        logger.warning("%s; moved to %s, the trial resumes from its checkpoint", e, storage.quarantine(*path))
        return False
    if not any(r["status"] in DONE for r in rows):
        return False
    folder = ("sweeps", sweep_id, "metrics")
    names = metrics.names(tid) if metrics is not None else storage.ls(*folder, prefix=f"{tid}-")
    for name in [n for n in names if n.startswith(f"{tid}-")]:
        try:
            storage.read_parquet(*folder, name)
        except DamagedFile as e:
            logger.warning("%s; moved to %s, the trial retrains from step 0", e, storage.quarantine(*folder, name))
            forget_trial(storage, sweep_id, tid)
            return False
    return True


def evaluated(storage: Storage, sweep_id: str, tid: str) -> bool:
    """Whether a skipped trial's final evaluation reads back; a damaged one is moved to quarantine/
    and the trial is evaluated again."""
    path = ("sweeps", sweep_id, "evaluations", f"{tid}.parquet")
    if not storage.exists(*path):
        return False
    try:
        storage.read_parquet(*path)
    except DamagedFile as e:
        get_run_logger().warning("%s; moved to %s, the trial is evaluated again", e, storage.quarantine(*path))
        return False
    return True


def forget_trial(storage: Storage, sweep_id: str, tid: str) -> None:
    """--force: remove a trial's outputs so it trains from scratch."""
    storage.rm("sweeps", sweep_id, "checkpoints", tid, recursive=True)
    for folder in ("trials", "evaluations", "eval_every", "metrics"):
        for name in storage.ls("sweeps", sweep_id, folder, prefix=tid):
            storage.rm("sweeps", sweep_id, folder, name)
    forget_rungs(storage, sweep_id, tid)


def mark_failed(storage: Storage, sweep_id: str, cfg: TrialConfig, error: str) -> dict:
    """A trial that trained but could not be evaluated has no result: it is `failed` in its row, the
    summary and the exit code, and a re-run evaluates it again (its last checkpoint is kept)."""
    from gan_tasks.training.rows import write_trial_row

    path = ("sweeps", sweep_id, "trials", f"{cfg.trial_id}.parquet")
    row = storage.read_parquet(*path).to_pylist()[-1]
    row.update(status="failed", error=error[:2000])
    write_trial_row(storage, row)
    return {"trial_id": cfg.trial_id, "status": "failed", "steps": row["steps"], "error": row["error"]}
