"""One trial's config (TrialConfig: everything that determines its results; its hash is the trial id),
the grid expanded into trials, and the resolved view of a sweep that `gansweep validate` prints."""
from __future__ import annotations

import collections
import hashlib
import itertools
import json

from pydantic import model_validator

from gan_tasks.config.entries import (ConfigError, DatasetEntry, LossEntry, ModelEntry, OptimizerEntry, TrainConfig,
                                      _Frozen, _resolve_kind)
from gan_tasks.config.labels import cell_label, _value
from gan_tasks.config.plugins import PluginCode, sweep_plugins, trial_plugins
from gan_tasks.config.search import apply_setting, cell_spaces, sample
from gan_tasks.config.sweep import SweepConfig
from gan_tasks.config.tpe import round_of, tpe_settings
from gan_tasks.data.datasets import dataset_spec
from gan_tasks.methods.programs import DEFAULT_PROGRAM
from gan_tasks.methods.trick_settings import Tricks


class TrialConfig(_Frozen):
    """Everything that determines one trial's results. Its hash is the trial id."""

    sweep_name: str
    dataset: DatasetEntry
    model: ModelEntry
    loss: LossEntry
    optimizer: OptimizerEntry
    seed: int
    train: TrainConfig
    tricks: Tricks = Tricks()
    program: str = DEFAULT_PROGRAM  # gan_tasks/methods/programs.py
    # Index of the sampled setting of a search (gan_tasks/config/search.py) within its cell; None: no search.
    setting: int | None = None
    # The plugin entries it uses, each with its distribution, version and code hash (config/plugins.py):
    # changed plugin code is another trial. Empty for built-ins only.
    plugins: tuple[PluginCode, ...] = ()

    @model_validator(mode="after")
    def _resolved(self) -> "TrialConfig":
        _resolve_kind(self, dataset_spec(self.dataset).kind, [(self.loss, self.optimizer)])
        return self

    @property
    def trial_id(self) -> str:
        return trial_id(self)

    @property
    def label(self) -> str:
        tricks = self.tricks.short  # only when on: trials without tricks keep their plain label
        setting = "" if self.setting is None else f"s{self.setting}/"
        return f"{self.loss.name}/{self.optimizer.name}/{tricks + '/' if tricks else ''}{setting}seed{self.seed}"

    @property
    def batch_samples(self) -> int:
        """Samples G makes (and real samples drawn) a step: batch_size, times pac when it counts groups."""
        return self.train.batch_size * (self.tricks.pac if self.train.batch_unit == "groups" else 1)

    @property
    def cell(self) -> str:
        """The trials table's `cell`: the label of everything but the seed (cell_label)."""
        return cell_label(self.model_dump(mode="json"))


def _kv(d: dict) -> str:
    return ", ".join(f"{k} {_value(v)}" for k, v in d.items())


def resolved_cells(sweep: SweepConfig) -> list[dict[str, str]]:
    """What each grid cell will run, every default filled in: cell label, loss params, optimizer
    (lr_g, lr_d, params) and tricks. `gansweep validate` prints it; trials store it in config.json."""
    rows = []
    for (loss, opt), tricks in itertools.product(sweep.grid.pairs(), sweep.grid.tricks or (sweep.tricks,)):
        t = TrialConfig(sweep_name=sweep.name, dataset=sweep.dataset, model=sweep.model, loss=loss,
                        optimizer=opt, seed=sweep.grid.seed[0], train=sweep.train, tricks=tricks, program=sweep.program)
        rows.append({"cell": t.cell, "loss": f"{loss.name}: {_kv(loss.params)}",
                     "optimizer": f"{opt.name}: lr_g {_value(opt.lr_g)}, lr_d {_value(opt.lr_d)}"
                                  + (f", {_kv(opt.params)}" if opt.params else ""),
                     "tricks": tricks.short or "-"})
    return rows


def resolved_common(sweep: SweepConfig) -> dict[str, str]:
    """The settings every trial of the sweep shares, resolved: dataset, model, train."""
    d = sweep.dataset
    what = (f"id {d.id}, {'x'.join(map(str, d.shape))}, {d.classes or 'no'} classes" if d.id  # data add
            else _kv(d.params))
    return {"dataset": f"{d.name} ({dataset_spec(d).kind}): {what}",
            "model": f"{sweep.model.name}: {_kv(sweep.model.params)}",
            "train": _kv(sweep.train.model_dump())}


def trial_id(t: TrialConfig) -> str:
    # sort_keys: the id must not depend on the order keys appear in the YAML
    # Default tricks are left out, so trials without tricks keep the ids they had before tricks existed.
    # The default program likewise: trials of configs without `program:` keep their ids; and no plugins.
    # Train options added later likewise, at their default (batch_unit also at pac 1, where it changes nothing).
    skip: dict = {k: True for k, default in (("tricks", t.tricks == Tricks()),
                                             ("program", t.program == DEFAULT_PROGRAM),
                                             ("setting", t.setting is None), ("plugins", not t.plugins)) if default}
    later = {"update": t.train.update == "alternating", "batch_unit": t.train.batch_unit == "samples" or t.tricks.pac == 1}
    if any(later.values()):
        skip["train"] = {k for k, default in later.items() if default}
    if t.dataset.id is None:  # built-in datasets: ids as before datasets of one's own existed
        skip["dataset"] = {"id", "shape", "classes"}
    dump = t.model_dump(mode="json", exclude=skip or None)
    blob = json.dumps(dump, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def expand_grid(sweep: SweepConfig) -> list[TrialConfig]:
    """(loss x optimizer, or the cells) x trick settings x seed, in YAML order; with a search, each cell's
    sampled settings x its seeds instead (search_trials); each trial with the plugin code it uses (its
    package's files read and hashed, once per package)."""
    g, codes = sweep.grid, sweep_plugins(sweep)
    trials = search_trials(sweep, codes=codes) if sweep.search is not None else [
        TrialConfig(sweep_name=sweep.name, dataset=sweep.dataset, model=sweep.model, loss=loss,
                    optimizer=opt, seed=seed, train=sweep.train, tricks=tricks, program=sweep.program,
                    plugins=trial_plugins(codes, loss.name, opt.name))
        for (loss, opt), tricks, seed in itertools.product(g.pairs(), g.tricks or (sweep.tricks,), g.seed)
    ]
    _no_dupes(trials)
    return trials


def _no_dupes(trials: list[TrialConfig]) -> None:
    counts = collections.Counter(t.trial_id for t in trials)  # linear; the axes were checked one by one
    dupes = sorted(i for i, n in counts.items() if n > 1)
    if dupes:
        raise ConfigError(f"grid: {sum(counts.values()) - len(counts)} duplicate trials (same resolved config): "
                          f"{dupes[:5]}")


def cell_key(loss: LossEntry, opt: OptimizerEntry, tricks: Tricks) -> str:
    """What seeds a cell's sampler: its resolved entries and tricks, as sorted JSON."""
    return json.dumps([loss.model_dump(mode="json"), opt.model_dump(mode="json"), tricks.model_dump(mode="json")],
                      sort_keys=True, separators=(",", ":"))


def search_settings(sweep: SweepConfig, budget: int | None = None, results: dict | None = None,
                    upto: int | None = None) -> list[dict]:
    """Every sampled setting of the search, cell by cell in grid order: {cell (label: 'loss/optimizer[/tricks]'),
    loss, optimizer, tricks, setting (index), round (tpe's, else 0), values ({name: value}), entries ((LossEntry,
    OptimizerEntry) with the values in place)}. sampler tpe: the start-up settings, and with `results` (trial id
    -> {metric: final value} of the completed trials) its first `upto` rounds (None: all) asked from them."""
    s, kind, out = sweep.search, dataset_spec(sweep.dataset).kind, []
    cells = list(itertools.product(sweep.grid.pairs(), sweep.grid.tricks or (sweep.tricks,)))
    names = [f"{lo.name}/{op.name}" + (f"/{tr.short}" if tr.short else "") for (lo, op), tr in cells]
    codes = sweep_plugins(sweep) if s.sampler == "tpe" and results is not None else None
    sweep_key = sweep.model_dump_json() if codes is not None else ""
    for c, ((loss, opt), tricks) in enumerate(cells):
        spaces = cell_spaces(s, loss, opt, kind, f"{loss.name}/{opt.name}")
        cell = names[c] if names.count(names[c]) == 1 else f"{names[c]}#{c}"  # two adam entries stay apart

        built: dict[int, dict] = {}
        memo: dict[int, dict | None] = {}

        def setting(i: int, values: dict) -> dict:
            if i not in built:
                built[i] = {"cell": cell, "loss": loss.name, "optimizer": opt.name, "tricks": tricks, "setting": i,
                            "round": round_of(s, i) if s.sampler == "tpe" else 0, "values": values,
                            "entries": apply_setting(loss, opt, values, kind)}
            return built[i]

        def score_of(i: int, values: dict) -> dict | None:  # mean over the setting's completed seeds
            if i in memo:
                return memo[i]
            per_seed = [results.get(_setting_id((sweep_key, cell, i, json.dumps(values, sort_keys=True), seed),
                                                lambda: setting_trial(sweep, setting(i, values), seed, codes)))
                        for seed in sweep.grid.seed[:s.seeds_per_setting]]
            done = [r for r in per_seed if r]
            memo[i] = {m: sum(r[m] for r in done if m in r) / sum(m in r for r in done)
                       for m in {m for r in done for m in r}} or None
            return memo[i]

        key = cell_key(loss, opt, tricks)
        drawn = (tpe_settings(s, spaces, key, budget, score_of if codes is not None else None, upto)
                 if s.sampler == "tpe" else sample(s, spaces, key, budget))
        out += [setting(i, values) for i, values in enumerate(drawn)]
    return out


_IDS: dict[tuple, str] = {}  # _setting_id's memory: tpe asks each round again with every earlier one


def _setting_id(key: tuple, trial) -> str:
    """A setting's trial id for a seed, remembered in this process (building a TrialConfig costs ~1 ms)."""
    if key not in _IDS:
        if len(_IDS) >= 100_000:
            _IDS.clear()
        _IDS[key] = trial().trial_id
    return _IDS[key]


def search_trials(sweep: SweepConfig, budget: int | None = None, codes: dict | None = None) -> list[TrialConfig]:
    """Each sampled setting x grid.seed's first seeds_per_setting seeds."""
    seeds, codes = sweep.grid.seed[:sweep.search.seeds_per_setting], sweep_plugins(sweep) if codes is None else codes
    return [setting_trial(sweep, st, seed, codes) for st in search_settings(sweep, budget) for seed in seeds]


def setting_trial(sweep: SweepConfig, st: dict, seed: int, codes: dict | None = None) -> TrialConfig:
    loss, opt = st["entries"]
    codes = sweep_plugins(sweep) if codes is None else codes
    return TrialConfig(sweep_name=sweep.name, dataset=sweep.dataset, model=sweep.model, loss=loss, optimizer=opt,
                       seed=seed, train=sweep.train, tricks=st["tricks"], program=sweep.program, setting=st["setting"],
                       plugins=trial_plugins(codes, loss.name, opt.name))


def confirm_seeds(sweep: SweepConfig) -> list[int]:
    """The confirm stage's seeds: new ones, after every seed of the grid (the search's picked the best)."""
    first = max(sweep.grid.seed) + 1
    return list(range(first, first + sweep.search.confirm_seeds))
