"""Sweep YAML -> frozen, typed models -> one TrialConfig per grid point.

Validation happens here, before any Ray or Prefect work: an unknown key, a wrong type or an
unknown registered name is a ConfigError naming the field and the valid values.
"""
from __future__ import annotations

import collections
import hashlib
import itertools
import json
import re
from typing import Annotated, Any

import yaml
from pydantic import Field, ValidationError, field_validator, model_validator

# Registries' metadata only (catalog.py): validating a sweep never imports torch.
from gan_tasks import strict_yaml
from gan_tasks.catalog import (LOSSES, MODELS, OPTIMIZERS, Tricks, check_dataset_extractor, check_eval,  # noqa: F401
                               check_packable, check_tricks, merge_tricks, tricks_label)
from gan_tasks.datasets import DATASETS, resolve_params
from gan_tasks.params import FieldError, Strict, check_params
from gan_tasks.registry import KINDS
from gan_tasks.sweep_checks import check_applies, check_duplicates, check_grid_size, check_limits
from gan_tasks.published import Published
from gan_tasks.early_stop import EarlyStop

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")  # fullmatch: `$` would let a trailing newline through
# 100 characters: a sweep id is the name plus a 16-character UTC stamp, and a file name may have 255.
NAME_MAX = 100
# Seeds are 32-bit: numpy's legacy seeding and every framework take them, and Parquet stores int64.
SEED_MAX = 2**32 - 1


class ConfigError(ValueError):
    """A sweep config that cannot run; the message names every bad field."""


class _Frozen(Strict):
    """Unknown keys refused, frozen, no NaN/inf, no bool for a number (gan_tasks/params.py)."""


def _entry(v: Any) -> Any:
    """A grid/registry entry may be a bare name or {name: ..., params: {...}}."""
    return {"name": v} if isinstance(v, str) else v


class LossEntry(_Frozen):
    name: str
    params: dict[str, Any] = Field(default_factory=dict)  # as given; resolve(kind) fills in the defaults

    @model_validator(mode="after")
    def _known(self) -> "LossEntry":
        loss = LOSSES.get(self.name)
        for kind in KINDS:  # keys checked now; a check (lsgan a != b) must hold whatever the data
            resolved = check_params("loss", self.name, self.params, loss.defaults_for(kind), loss.schema)
            if loss.check:
                loss.check(resolved)
        return self

    def resolve(self, kind: str) -> None:
        """Fill in the loss's defaults for this kind of data; a value given in the config wins."""
        object.__setattr__(self, "params", {**LOSSES.get(self.name).defaults_for(kind), **self.params})


class OptimizerEntry(_Frozen):
    name: str
    # None: the optimizer's default for the kind of data. At most 10: no GAN optimiser steps further.
    lr_g: float | None = Field(None, gt=0, le=10)
    lr_d: float | None = Field(None, gt=0, le=10)
    params: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _known(self) -> "OptimizerEntry":
        spec = OPTIMIZERS.get(self.name)
        check_params("optimizer", self.name, self.params, spec.defaults_for(KINDS[0]) | spec.defaults_for(KINDS[1]),
                     spec.schema)
        return self

    def resolve(self, kind: str) -> None:
        spec = OPTIMIZERS.get(self.name)
        object.__setattr__(self, "params", {**spec.defaults_for(kind), **self.params})
        object.__setattr__(self, "lr_g", self.lr_g or spec.lr_for(kind))
        object.__setattr__(self, "lr_d", self.lr_d or spec.lr_for(kind))


class DatasetEntry(_Frozen):
    name: str
    params: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _resolve(self) -> "DatasetEntry":
        if not _NAME.fullmatch(self.name) or ".." in self.name:
            raise ValueError(f"dataset name {self.name!r} may hold only letters, digits, '-', '_', '.'")
        object.__setattr__(self, "params", resolve_params(self.name, self.params))
        return self


class ModelEntry(_Frozen):
    name: str
    params: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _resolve(self) -> "ModelEntry":
        spec = MODELS.get(self.name)
        object.__setattr__(self, "params", check_params("model", self.name, self.params, spec.defaults, spec.schema))
        return self


class TrainConfig(_Frozen):
    steps: int = Field(2000, gt=0)  # generator steps
    # None: the default for the kind of data (TRAIN_BY_KIND), filled in when the sweep is resolved.
    batch_size: int | None = Field(None, gt=0)
    z_dim: int | None = Field(None, gt=0)
    # Decay of an exponential moving average of G's weights, used for every evaluation and sample
    # (Yazici et al. 2019); 0: off, the raw G is evaluated. Training itself never sees it.
    g_ema: float | None = Field(None, ge=0, lt=1)
    log_every: int = Field(10, gt=0)  # steps between metric rows; buffered, not on the hot path
    checkpoint_every: int = Field(500, gt=0)  # also when buffered metrics are flushed to storage
    keep_checkpoints: int = Field(2, gt=0, le=100)  # the latest K; K >= 2 survives one truncated file


# Train settings whose default depends on the kind of data; a value in the config always wins.
TRAIN_BY_KIND: dict[str, dict[str, Any]] = {
    # batch 256: PacGAN / VEEGAN 2-D experiments use a few hundred. z_dim 16: more than the 2 data
    # dimensions, so G can fold noise onto 8 or 25 separate modes. g_ema 0.99: measured (configs/defaults.md):
    # a snapshot of G on the ring jitters between evaluations (33 -> 7 -> 34 % high quality), an average
    # over the last ~100 steps does not.
    "points": {"batch_size": 256, "z_dim": 16, "g_ema": 0.99},
    # batch 64, z 100: DCGAN (Radford et al. 2015). EMA off: Yazici et al. average over 100k+ steps
    # (decay 0.9999); image sweeps here are shorter, so a user opts in with a decay suited to the budget.
    "images": {"batch_size": 64, "z_dim": 100, "g_ema": 0.0},
}


def resolve_train(train: "TrainConfig", kind: str) -> "TrainConfig":
    """The train settings with the kind's defaults filled in where the config left None."""
    fill = {k: v for k, v in TRAIN_BY_KIND[kind].items() if getattr(train, k) is None}
    return train.model_copy(update=fill) if fill else train


class Resources(_Frozen):
    # Upper bounds: the largest single node one could rent (8 GPUs, 512 cores); more waits forever.
    gpus_per_trial: float = Field(0.0, ge=0, le=8)  # fractional packs several trials on one GPU
    cpus_per_trial: float = Field(1.0, gt=0, le=512)
    max_parallel: int | None = Field(None, gt=0, le=100_000)  # None: as many as Ray can place


class Limits(_Frozen):
    """Upper bounds on sizes, against typos (`steps: 1e20`, `batch_size: 10000000000`) that would start
    a cluster and then fail or run forever. A sweep that really means more raises one here, in its
    file (`limits: {steps: 50000000}`) or with `--set limits.steps=50000000`."""

    trials: int = Field(10_000, gt=0)  # trials per sweep: 10k rows is already a night on a cluster
    steps: int = Field(10_000_000, gt=0)  # generator steps (also log/checkpoint/eval intervals): ~1 day at 100/s
    batch_size: int = Field(65_536, gt=0)  # 2^16 images of 3x32x32 floats are 800 MB per batch
    samples: int = Field(1_000_000, gt=0)  # dataset n_samples and every evaluation sample count
    width: int = Field(4_096, gt=0)  # z_dim and model widths (mlp hidden: 4096^2 = 16.7M weights a layer)


class EvalConfig(_Frozen):
    n_samples: int = Field(2500, gt=0)  # PacGAN / VEEGAN: 2,500 samples for mode coverage
    # "high quality" = within 3 std of its nearest mode; at 100 std every sample is, which measures nothing.
    std_threshold: float = Field(3.0, gt=0, le=100)
    # Image metrics (gan_tasks/fidelity.py). None: the dataset's in-domain classifier where it has
    # one (mnist, fashion-mnist; seed 004 scores IS with one), no image metrics otherwise.
    feature_extractor: str | None = None
    feature_extractor_weights_path: str | None = None  # local weights file; inception-v3 needs one
    # Pin a classifier by its content hash (16 hex digits, a file name in storage); None: current.json.
    classifier_hash: str | None = Field(None, pattern=r"^[0-9a-f]{16}$")
    image_metrics: tuple[str, ...] = ("isc", "fid", "kid", "prc")  # torch-fidelity's IS, FID, KID, P/R
    fidelity_samples: int = Field(10_000, gt=0)  # generated and real images; 10k is the usual FID count
    stacked_samples: int = Field(26_000, gt=0)  # PacGAN counts Stacked MNIST modes over 26,000 samples
    eval_every: int | None = Field(None, gt=0)  # cheap metrics during training every N steps; None: off
    eval_every_samples: int = Field(1_000, gt=0)  # the cheap version's sample count (small-sample FID)

    @model_validator(mode="after")
    def _known(self) -> "EvalConfig":
        check_eval(self.feature_extractor, self.feature_extractor_weights_path, self.image_metrics)
        return self


class Cell(_Frozen):
    """One explicit (loss, optimizer) point of grid.cells."""

    loss: LossEntry
    optimizer: OptimizerEntry

    @field_validator("loss", "optimizer", mode="before")
    @classmethod
    def _entries(cls, v: Any) -> Any:
        return _entry(v)


class Grid(_Frozen):
    """loss x optimizer (a product) or explicit cells, x trick settings x seed.

    Cells exist because a paper's comparison is often a few fixed pairs, not their product
    (seed 004: DCGAN = non-saturating/adam, WGAN = wgan/rmsprop, WGAN-GP = wgan-gp/adam(1e-4, 0.5, 0.9)).
    """

    loss: tuple[LossEntry, ...] | None = Field(None, min_length=1)
    optimizer: tuple[OptimizerEntry, ...] | None = Field(None, min_length=1)
    cells: tuple[Cell, ...] | None = Field(None, min_length=1)
    seed: tuple[Annotated[int, Field(ge=0, le=SEED_MAX)], ...] = Field(min_length=1)
    # Trick settings compared in one sweep, each merged over the sweep's `tricks:` (None: just those).
    # SweepConfig replaces the entries by the merged, fully resolved settings.
    tricks: tuple[Tricks, ...] | None = Field(None, min_length=1)

    @field_validator("loss", "optimizer", mode="before")
    @classmethod
    def _entries(cls, v: Any) -> Any:
        return [_entry(x) for x in v] if isinstance(v, (list, tuple)) else v

    @model_validator(mode="after")
    def _product_or_cells(self) -> "Grid":
        if self.cells is not None and (self.loss is not None or self.optimizer is not None):
            raise ValueError("grid.cells lists (loss, optimizer) pairs; it cannot be combined with "
                             "grid.loss / grid.optimizer (use one or the other)")
        if self.cells is None and (self.loss is None or self.optimizer is None):
            missing = " and ".join(f"grid.{k}" for k in ("loss", "optimizer") if getattr(self, k) is None)
            raise ValueError(f"{missing} missing: give grid.loss and grid.optimizer (their product), or grid.cells")
        return self

    def pairs(self) -> list[tuple[LossEntry, OptimizerEntry]]:
        """The (loss, optimizer) cells in YAML order."""
        if self.cells is not None:
            return [(c.loss, c.optimizer) for c in self.cells]
        return list(itertools.product(self.loss, self.optimizer))

    def loss_names(self) -> list[str]:
        return [loss.name for loss, _ in self.pairs()]

    def describe(self) -> str:
        """'3 losses x 2 optimizers x 2 seeds', '3 cells x 2 trick settings x 3 seeds', ..."""
        n = lambda k, one, many: f"{k} {one if k == 1 else many}"  # noqa: E731 - "1 optimizer", "2 optimizers"
        axes = ([n(len(self.cells), "cell", "cells")] if self.cells is not None
                else [n(len(self.loss), "loss", "losses"), n(len(self.optimizer), "optimizer", "optimizers")])
        axes += [n(len(self.tricks), "trick setting", "trick settings")] if self.tricks else []
        return " x ".join(axes + [n(len(self.seed), "seed", "seeds")])


class SweepConfig(_Frozen):
    name: str
    dataset: DatasetEntry
    model: ModelEntry
    grid: Grid
    train: TrainConfig = TrainConfig()
    resources: Resources = Resources()
    evaluation: EvalConfig = EvalConfig()
    # Seeds of one (loss, optimizer) cell trained together in one actor as one stacked model
    # (gan_tasks/packing.py). 1: off, each seed its own actor call; results do not depend on it.
    # At most 64: beyond that one actor's stacked model is a cluster's worth of seeds.
    pack_seeds: int = Field(1, ge=1, le=64)
    tricks: Tricks = Tricks()
    # A paper's table this sweep reproduces (gan_tasks/published.py): rankings and the report put
    # it beside the measured values. None: a sweep of our own.
    published: Published | None = None
    # Stop hopeless trials at rungs of successive halving (gan_tasks/early_stop.py). None: every
    # trial trains its full budget. Not part of any trial id: it only cuts a trial short.
    early_stop: EarlyStop | None = None
    limits: Limits = Limits()  # raisable upper bounds on sizes (gan_tasks/sweep_checks.py)

    @model_validator(mode="before")
    @classmethod
    def _limits_first(cls, data: Any) -> Any:
        """Refuse an absurd grid before pydantic builds a million entries of it."""
        try:
            limits = Limits.model_validate(data.get("limits") or {})
        except (ValidationError, AttributeError):  # the `limits` field itself reports what is wrong
            limits = Limits()
        return check_grid_size(data, limits)

    @field_validator("dataset", "model", mode="before")
    @classmethod
    def _entries(cls, v: Any) -> Any:
        return _entry(v)

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if len(v) > NAME_MAX:
            raise ValueError(f"{len(v):,} characters; at most {NAME_MAX}")
        if not _NAME.fullmatch(v):
            raise ValueError("may hold only letters, digits, '-', '_', '.' (no spaces or newlines)")
        return v

    @model_validator(mode="after")
    def _model_fits_data(self) -> "SweepConfig":
        check_limits(self)  # sizes first: nothing below should work on an absurd config
        kind = DATASETS.get(self.dataset.name).kind
        _resolve_kind(self, kind, self.grid.pairs())
        if kind not in MODELS.get(self.model.name).data_kinds:
            valid = [m for m in MODELS.names() if kind in MODELS.get(m).data_kinds]
            raise ValueError(f"model {self.model.name!r} cannot fit {kind} dataset {self.dataset.name!r}; "
                             f"valid models: {', '.join(valid)}")
        _check_model_fits(self)
        losses = self.grid.loss_names()
        check_tricks(self.tricks, losses, self.model.name)
        if self.grid.tricks:  # resolved here: merging needs the sweep-level tricks
            object.__setattr__(self.grid, "tricks", merge_tricks(self.tricks, self.grid.tricks, losses,
                                                                 self.model.name))
        bad = sorted({t.pac for t in self.grid.tricks or (self.tricks,) if self.train.batch_size % t.pac})
        if bad:  # PacGAN packing splits each batch into groups of pac samples
            raise ValueError(f"train.batch_size {self.train.batch_size} is not divisible by tricks.pac "
                             f"{', '.join(map(str, bad))}: packing makes groups of pac samples; choose a batch "
                             f"size that is a multiple of every pac in the sweep")
        check_duplicates(self.grid)  # after resolution: `lsgan` and `{name: lsgan, params: {a: 0}}` are one
        check_applies(self.evaluation, kind, self.dataset.name)
        if self.early_stop is not None:
            self.early_stop.check(self.train.steps, self.evaluation.eval_every, kind)
            if self.pack_seeds > 1:
                raise ValueError("early_stop needs pack_seeds: 1: packed seeds train as one model, none can stop alone")
        return self

    @model_validator(mode="after")
    def _evaluable(self) -> "SweepConfig":
        check_dataset_extractor(self.dataset.name, self.evaluation.feature_extractor)
        return self

    @model_validator(mode="after")
    def _packable(self) -> "SweepConfig":
        for tricks in self.grid.tricks or (getattr(self, "tricks", None),):
            check_packable(self.pack_seeds, self.grid.loss_names(), tricks)
        return self


def _resolve_kind(cfg: "SweepConfig | TrialConfig", kind: str, pairs: list) -> None:
    """Every default that depends on the kind of data, filled in (in place: idempotent, frozen models)."""
    for loss, opt in pairs:
        loss.resolve(kind)
        opt.resolve(kind)
    object.__setattr__(cfg, "train", resolve_train(cfg.train, kind))


def _check_model_fits(sweep: "SweepConfig") -> None:
    """Image side lengths, and autoencoder discriminators only with the losses built for them."""
    model, ds = MODELS.get(sweep.model.name), DATASETS.get(sweep.dataset.name)
    if model.sizes and ds.shape and ds.shape[-1] not in model.sizes:
        valid = [m for m in MODELS.names() if ds.shape[-1] in MODELS.get(m).sizes]
        raise ValueError(f"model {sweep.model.name!r} takes {'/'.join(map(str, model.sizes))}-pixel images, dataset "
                         f"{sweep.dataset.name!r} has {ds.shape[-1]}; valid models: {', '.join(valid)}")
    for loss, _ in sweep.grid.pairs():
        if LOSSES.get(loss.name).autoencoder != model.autoencoder:
            ae = [m for m in MODELS.names() if MODELS.get(m).autoencoder]
            raise ValueError(f"grid.loss {loss.name!r} and model {sweep.model.name!r} do not fit: the began loss "
                             f"needs an autoencoder discriminator ({', '.join(ae)}) and those fit only began")


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

    @model_validator(mode="after")
    def _resolved(self) -> "TrialConfig":
        _resolve_kind(self, DATASETS.get(self.dataset.name).kind, [(self.loss, self.optimizer)])
        return self

    @property
    def trial_id(self) -> str:
        return trial_id(self)

    @property
    def label(self) -> str:
        tricks = self.tricks.short  # only when on: trials without tricks keep their plain label
        return f"{self.loss.name}/{self.optimizer.name}/{tricks + '/' if tricks else ''}seed{self.seed}"

    @property
    def cell(self) -> str:
        """The trials table's `cell`: the label of everything but the seed (cell_label)."""
        return cell_label(self.model_dump(mode="json"))


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


def cell_label(cfg: dict) -> str:
    """'loss[(settings)]/optimizer[(settings)][/tricks]' of a JSON-dumped TrialConfig, e.g.
    'wgan-gp/adam(lr 0.0001, betas 0.5,0.9)/label_smoothing=0.1': the trial label without the seed,
    each entry with the settings that differ from its registered defaults. Two trials of one sweep get
    one label exactly when they differ only by seed (dataset, model and train are the sweep's)."""

    def entry(e: dict, extra: list[str], defaults: dict) -> str:
        shown = extra + _settings(e.get("params") or {}, defaults)
        return f"{e['name']}({', '.join(shown)})" if shown else e["name"]

    loss, opt = cfg["loss"], cfg["optimizer"]
    kind = DATASETS.get(cfg["dataset"]["name"]).kind
    lr = OPTIMIZERS.get(opt["name"]).lr_for(kind)
    lrs = {k: opt.get(k) or lr for k in ("lr_g", "lr_d")}
    if lrs["lr_g"] == lrs["lr_d"]:
        lr_shown = [f"lr {_value(lrs['lr_g'])}"] if json.dumps(lrs["lr_g"]) != json.dumps(lr) else []
    else:
        lr_shown = [f"{k} {_value(v)}" for k, v in lrs.items() if json.dumps(v) != json.dumps(lr)]
    tricks = tricks_label(cfg.get("tricks") or {})
    parts = [entry(loss, [], LOSSES.get(loss["name"]).defaults_for(kind)),
             entry(opt, lr_shown, OPTIMIZERS.get(opt["name"]).defaults_for(kind))]
    return "/".join(parts + ([tricks] if tricks else []))


def _kv(d: dict) -> str:
    return ", ".join(f"{k} {_value(v)}" for k, v in d.items())


def resolved_cells(sweep: SweepConfig) -> list[dict[str, str]]:
    """What each grid cell will run, every default filled in: cell label, loss params, optimizer
    (lr_g, lr_d, params) and tricks. `gansweep validate` prints it; trials store it in config.json."""
    rows = []
    for (loss, opt), tricks in itertools.product(sweep.grid.pairs(), sweep.grid.tricks or (sweep.tricks,)):
        t = TrialConfig(sweep_name=sweep.name, dataset=sweep.dataset, model=sweep.model, loss=loss,
                        optimizer=opt, seed=sweep.grid.seed[0], train=sweep.train, tricks=tricks)
        rows.append({"cell": t.cell, "loss": f"{loss.name}: {_kv(loss.params)}",
                     "optimizer": f"{opt.name}: lr_g {_value(opt.lr_g)}, lr_d {_value(opt.lr_d)}"
                                  + (f", {_kv(opt.params)}" if opt.params else ""),
                     "tricks": tricks.short or "-"})
    return rows


def resolved_common(sweep: SweepConfig) -> dict[str, str]:
    """The settings every trial of the sweep shares, resolved: dataset, model, train."""
    kind = DATASETS.get(sweep.dataset.name).kind
    return {"dataset": f"{sweep.dataset.name} ({kind}): {_kv(sweep.dataset.params)}",
            "model": f"{sweep.model.name}: {_kv(sweep.model.params)}",
            "train": _kv(sweep.train.model_dump())}


def trial_id(t: TrialConfig) -> str:
    # sort_keys: the id must not depend on the order keys appear in the YAML
    # Default tricks are left out, so trials without tricks keep the ids they had before tricks existed.
    dump = t.model_dump(mode="json", exclude={"tricks"} if t.tricks == Tricks() else None)
    blob = json.dumps(dump, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def expand_grid(sweep: SweepConfig) -> list[TrialConfig]:
    """Pure: (loss x optimizer, or the cells) x trick settings x seed, in YAML order."""
    g = sweep.grid
    trials = [
        TrialConfig(sweep_name=sweep.name, dataset=sweep.dataset, model=sweep.model, loss=loss,
                    optimizer=opt, seed=seed, train=sweep.train, tricks=tricks)
        for (loss, opt), tricks, seed in itertools.product(g.pairs(), g.tricks or (sweep.tricks,), g.seed)
    ]
    counts = collections.Counter(t.trial_id for t in trials)  # linear; the axes were checked one by one
    dupes = sorted(i for i, n in counts.items() if n > 1)
    if dupes:
        raise ConfigError(f"grid: {sum(counts.values()) - len(counts)} duplicate trials (same resolved config): "
                          f"{dupes[:5]}")
    return trials


def check_sweep_id(sweep_id: str) -> str:
    """A sweep id becomes a storage folder: no '/', no '..', nothing a shell would mangle."""
    if not _NAME.fullmatch(sweep_id) or ".." in sweep_id or len(sweep_id) > 2 * NAME_MAX:
        raise ConfigError(f"sweep_id {sweep_id[:2 * NAME_MAX]!r}: use letters, digits, '-', '_', '.' (no '/' or "
                          f"'..'), at most {2 * NAME_MAX} characters")
    return sweep_id


def _format(err: ValidationError) -> str:
    lines, errors = [], err.errors()
    for e in errors:
        # A list with a bad entry also "has 0 items after validation": the entry's own error says it all.
        if e["type"] == "too_short" and any(len(o["loc"]) > len(e["loc"]) and o["loc"][:len(e["loc"])] == e["loc"]
                                            for o in errors):
            continue
        field = ".".join(str(p) for p in e["loc"])
        msg = e["msg"].removeprefix("Value error, ")
        err = (e.get("ctx") or {}).get("error")
        if isinstance(err, FieldError):  # a value below the field pydantic knows: join the two paths
            field, msg = ".".join(p for p in (field, err.path) if p), err.msg
        field = field or "(top level)"
        if e["type"] == "extra_forbidden":
            msg = "unknown key"
        lines.append(f"  {field}: {msg}")
    return "invalid sweep config:\n" + "\n".join(lines)


def parse_config(data: Any) -> SweepConfig:
    if not isinstance(data, dict):
        raise ConfigError("invalid sweep config: the top level must be a mapping")
    try:
        return SweepConfig.model_validate(data)
    except ValidationError as e:
        raise ConfigError(_format(e)) from None


def apply_overrides(data: Any, sets: list[str] | tuple[str, ...]) -> Any:
    """`--set key=value` over a loaded YAML mapping (a copy): the key a dotted path (`train.steps`,
    `grid.seed`, `grid.loss.1.params.a`, `model.params.hidden`), the value parsed as YAML
    (`[0,1]`, `1e-3`, `{name: adam}`). The result is validated exactly like the file."""
    data = json.loads(json.dumps(data)) if isinstance(data, dict) else data
    if not isinstance(data, dict):
        return data  # parse_config says what is wrong with the file
    for item in sets:
        key, eq, raw = item.partition("=")
        parts = key.strip().split(".")
        if not eq or not all(parts):
            raise ConfigError(f"--set {item!r}: expected key=value with a dotted key, e.g. train.steps=200")
        try:
            value = strict_yaml.loads(raw, f"--set {key}: the value {raw[:60]!r}")
        except strict_yaml.YamlError as e:
            raise ConfigError(str(e)) from None
        node: Any = data
        for i, part in enumerate(parts[:-1]):
            nxt = _child(node, part, key)
            if isinstance(nxt, str) and parts[i + 1] in ("name", "params"):
                nxt = {"name": nxt}  # `model: mlp` then `--set model.params.hidden=256`
            elif nxt is None:
                nxt = {}
            if not isinstance(nxt, (dict, list)):
                raise ConfigError(f"--set {key}: {'.'.join(parts[:i + 1])} is {nxt!r}, not a mapping or list")
            _put(node, part, nxt, key)
            node = nxt
        _put(node, parts[-1], value, key)
    return data


def _child(node: Any, part: str, key: str) -> Any:
    if isinstance(node, list):
        return node[_index(node, part, key)]
    return node.get(part)


def _put(node: Any, part: str, value: Any, key: str) -> None:
    if isinstance(node, list):
        node[_index(node, part, key)] = value
    else:
        node[part] = value


def _index(node: list, part: str, key: str) -> int:
    if not part.isdigit() or int(part) >= len(node):
        raise ConfigError(f"--set {key}: {part!r} is not an index of a list of {len(node)} entries (0..{len(node) - 1})")
    return int(part)


def load_config(path: str, overrides: list[str] | tuple[str, ...] = ()) -> SweepConfig:
    """A sweep file (strict YAML: no duplicate keys, no alias bombs, UTF-8, <= 1 MB), --set, validated."""
    try:
        data = strict_yaml.load(path)
    except strict_yaml.YamlError as e:
        raise ConfigError(str(e)) from None
    return parse_config(apply_overrides(data, overrides))


def dump_config(sweep: SweepConfig) -> str:
    return yaml.safe_dump(sweep.model_dump(mode="json"), sort_keys=False)
