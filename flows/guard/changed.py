"""A re-run of a sweep id after a plugin's code changed (docs/plugins.md, "Code is part of a trial").

The plugin code a trial used is part of its id (gan_tasks/config/plugins.py: PluginCode), so changed code
means new trials beside the stored ones of the same cells. That is refused, naming the old and the new
code, unless the user asks to retrain them (`--retrain-changed`): then the stored trials that used other
code are moved to sweeps/<id>/superseded/ (their checkpoints deleted), and exactly their cells' new
trials train. Built-in-only trials keep their ids and are never touched.
"""
from __future__ import annotations

import json
from typing import Callable

from gan_tasks.config import TrialConfig
from gan_tasks.config.early_stop import forget_rungs
from gan_tasks.data.storage import DamagedFile, Storage
from gan_tasks.errors import BadInput

FOLDERS = ("trials", "evaluations", "eval_every", "metrics")


class CodeChanged(BadInput):
    """A re-run of a sweep id whose stored trials used other plugin code than is installed now."""


def changed_trials(storage: Storage, sweep_id: str, trials: list[TrialConfig]) -> dict[str, list[tuple[str, str]]]:
    """Stored trial id -> [(old label, new label)] of each plugin entry whose code differs from now."""
    now = {(p.kind, p.name): p for t in trials for p in t.plugins}
    ids = {t.trial_id for t in trials}
    out: dict[str, list[tuple[str, str]]] = {}
    for name in storage.ls("sweeps", sweep_id, "trials"):
        tid = name.removesuffix(".parquet")
        if tid in ids or not name.endswith(".parquet"):
            continue
        try:
            rows = storage.read_parquet("sweeps", sweep_id, "trials", name).to_pylist()
        except DamagedFile:
            continue
        used = json.loads((rows[-1].get("plugins") if rows else None) or "[]")
        diff = []
        for old in used:
            new = now.get((old["kind"], old["name"]))
            if new is not None and (old["dist"], old["version"], old["code_hash"]) != (new.dist, new.version,
                                                                                      new.code_hash):
                diff.append((f"{old['dist']} {old['version']} code {old['code_hash']}", new.label))
        if diff:
            out[tid] = diff
    return out


def supersede(storage: Storage, sweep_id: str, tid: str) -> None:
    """Move a trial's rows, metrics and evaluations to sweeps/<id>/superseded/<folder>/; drop its checkpoints."""
    for folder in FOLDERS:
        for name in storage.ls("sweeps", sweep_id, folder):
            if name.startswith(tid):
                src = ("sweeps", sweep_id, folder, name)
                storage.write_bytes(storage.read_bytes(*src), "sweeps", sweep_id, "superseded", folder, name)
                storage.rm(*src)
    storage.rm("sweeps", sweep_id, "checkpoints", tid, recursive=True)
    forget_rungs(storage, sweep_id, tid)  # its values at early_stop rungs count no more


def check_code(storage: Storage, sweep_id: str, trials: list[TrialConfig], retrain: bool,
               say: Callable[[str], None] = print) -> list[str]:
    """Refuse (CodeChanged) a re-run whose stored trials used other plugin code, or with `retrain` move
    those trials aside (their new ids then train); the ids moved aside."""
    if not any(t.plugins for t in trials) or not storage.exists("sweeps", sweep_id, "config.yaml"):
        return []
    changed = changed_trials(storage, sweep_id, trials)
    if not changed:
        return []
    pairs = sorted({pair for diff in changed.values() for pair in diff})
    what = "; ".join(f"{old} -> {new}" for old, new in pairs)
    if not retrain:
        raise CodeChanged(f"sweep {sweep_id}: plugin code changed since its trials ran: {what} ({len(changed)} "
                          "trials used it); --retrain-changed retrains exactly those, or choose another --sweep-id")
    for tid in sorted(changed):
        supersede(storage, sweep_id, tid)
    say(f"plugin code changed ({what}): {len(changed)} trials moved to sweeps/{sweep_id}/superseded/, "
        "their cells retrain")
    return sorted(changed)
