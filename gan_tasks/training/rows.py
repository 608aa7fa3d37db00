"""A trial's row in `trials/<trial_id>.parquet` (schema: gan_tasks/data/schema.py TRIALS), built and
written without torch: the sweep's driver writes rows too (a failed actor, Ctrl-C, a pack's failure),
and its task-run threads must not wait on the import lock of a first `import torch` (bench/README.md)."""
from __future__ import annotations

import json
from datetime import datetime, timezone

import pyarrow as pa

from gan_tasks.config import TrialConfig
from gan_tasks.data import schema
from gan_tasks.data.storage import DamagedFile, Storage


def now() -> datetime:
    return datetime.now(timezone.utc)


def trial_row(cfg: TrialConfig, sweep_id: str, status: str, steps: int, started: datetime,
              finished: datetime | None, error: str = "", device: str = "", node: str = "",
              history: dict | None = None) -> dict:
    """history: where and from which step it trained so far (`history`, `started_on`); none: a fresh trial."""
    return {**(history or fresh_history()), "sweep_id": sweep_id, "trial_id": cfg.trial_id, "loss": cfg.loss.name, "optimizer": cfg.optimizer.name,
            "seed": cfg.seed, "dataset": cfg.dataset.name, "model": cfg.model.name, "status": status,
            "steps": steps, "wall_seconds": ((finished or now()) - started).total_seconds(),
            "started_at": started, "finished_at": finished, "error": error, "device": device, "node": node,
            "config_json": json.dumps(cfg.model_dump(mode="json"), sort_keys=True), "cell": cfg.cell,
            "dataset_id": cfg.dataset.id, "plugins": plugins_json(cfg)}


def plugins_json(cfg: TrialConfig) -> str:
    """The trials table's `plugins`: the plugin entries the trial used, as a JSON list ("[]": built-ins only)."""
    return json.dumps([p.model_dump(exclude={"entry_point"}) for p in cfg.plugins], sort_keys=True)


def write_trial_row(storage: Storage, row: dict) -> None:
    """Written with the id of the data the trial trained on (`dataset_id`) filled in where the config does
    not carry it: a built-in dataset's, from storage (gan_tasks/data/userdata.trained_id)."""
    if row.get("dataset_id") is None and row.get("config_json"):
        from gan_tasks.data.userdata import trained_id

        params = json.loads(row["config_json"]).get("dataset", {}).get("params", {})
        row = {**row, "dataset_id": trained_id(storage, row["dataset"], params)}
    table = pa.Table.from_pylist([row], schema=schema.TRIALS)
    storage.write_parquet(table, "sweeps", row["sweep_id"], "trials", f"{row['trial_id']}.parquet")


def fresh_history() -> dict:
    return {"nodes": [], "resumed_from": [], "preemptions": 0}


def history(storage: Storage, sweep_id: str, trial_id: str) -> dict:
    """The trial's `nodes`, `resumed_from` and `preemptions` as its stored row has them: empty for a new
    trial, a row written before these columns existed, or a damaged one (the re-run repairs it)."""
    row = stored_row(storage, sweep_id, trial_id)
    if row is None:
        return fresh_history()
    return {"nodes": list(row.get("nodes") or []), "resumed_from": list(row.get("resumed_from") or []),
            "preemptions": int(row.get("preemptions") or 0)}


def stored_row(storage: Storage, sweep_id: str, trial_id: str) -> dict | None:
    """The trial's row as stored; None for a new trial or a damaged row."""
    try:
        return storage.read_parquet("sweeps", sweep_id, "trials", f"{trial_id}.parquet").to_pylist()[-1]
    except (FileNotFoundError, DamagedFile):
        return None


def started_on(h: dict, node: str, step: int) -> dict:
    """h with one more start: on `node` (listed again only when it changed), from `step`."""
    nodes = h["nodes"] if not node or h["nodes"][-1:] == [node] else [*h["nodes"], node]
    return {**h, "nodes": nodes, "resumed_from": [*h["resumed_from"], step]}
