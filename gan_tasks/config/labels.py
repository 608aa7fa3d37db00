"""The one mechanism that names a cell (everything of a trial but its seed): `cell_parts` of a
JSON-dumped TrialConfig. The trials table's `cell` column, `gansweep validate`'s table and the
rankings' loss / optimizer labels (gan_tasks/evaluation/rankings.py) all come from here."""
from __future__ import annotations

import json
from typing import Any

from gan_tasks.data.datasets import dataset_spec
from gan_tasks.methods.catalog import LOSSES, OPTIMIZERS
from gan_tasks.methods.programs import DEFAULT_PROGRAM
from gan_tasks.methods.trick_settings import tricks_label


def _value(v: Any) -> str:
    """A setting in a cell label: floats as their shortest round trip, lists as 'a,b'; 10 and 10.0
    stay apart, as they do in the trial id."""
    if isinstance(v, (list, tuple)):
        return ",".join(map(_value, v))
    if isinstance(v, (str, int, float)) and not isinstance(v, bool):
        return str(v)
    return json.dumps(v, sort_keys=True, separators=(",", ":"))


def _settings(entry: dict, defaults: dict) -> list[str]:
    """'key value' of each setting that is not its registered default (compared as JSON)."""
    same = lambda k: json.dumps(entry[k], sort_keys=True) == json.dumps(defaults.get(k), sort_keys=True)  # noqa: E731
    return [f"{k} {_value(entry[k])}" for k in sorted(entry) if k in defaults and not same(k)]


def cell_parts(cfg: dict) -> dict[str, str]:
    """The labels of a JSON-dumped TrialConfig's cell, by part: loss and optimizer as
    'name[(settings)]' with the settings that differ from the registered defaults (e.g.
    'adam(lr 0.0001, betas 0.5,0.9)'), tricks as 'k=v,...' of those that are on ('' when none)."""

    def entry(e: dict, extra: list[str], defaults: dict) -> str:
        shown = extra + _settings(e.get("params") or {}, defaults)
        return f"{e['name']}({', '.join(shown)})" if shown else e["name"]

    loss, opt = cfg["loss"], cfg["optimizer"]
    kind = dataset_spec(cfg["dataset"]).kind
    lr = OPTIMIZERS.get(opt["name"]).lr_for(kind)
    lrs = {k: opt.get(k) or lr for k in ("lr_g", "lr_d")}
    if lrs["lr_g"] == lrs["lr_d"]:
        lr_shown = [f"lr {_value(lrs['lr_g'])}"] if json.dumps(lrs["lr_g"]) != json.dumps(lr) else []
    else:
        lr_shown = [f"{k} {_value(v)}" for k, v in lrs.items() if json.dumps(v) != json.dumps(lr)]
    return {"loss": entry(loss, [], LOSSES.get(loss["name"]).defaults_for(kind)),
            "optimizer": entry(opt, lr_shown, OPTIMIZERS.get(opt["name"]).defaults_for(kind)),
            "tricks": tricks_label(cfg.get("tricks") or {}),
            "program": "" if cfg.get("program", DEFAULT_PROGRAM) == DEFAULT_PROGRAM else cfg["program"]}


def cell_label(cfg: dict) -> str:
    """'[program/]loss[(settings)]/optimizer[(settings)][/tricks]' (cell_parts), e.g.
    'wgan-gp/adam(lr 0.0001, betas 0.5,0.9)/label_smoothing=0.1': the trial label without the seed.
    Two trials of one sweep get one label exactly when they differ only by seed (dataset, model and
    train are the sweep's)."""
    parts = cell_parts(cfg)
    return "/".join(p for p in (parts["program"], parts["loss"], parts["optimizer"], parts["tricks"]) if p)
