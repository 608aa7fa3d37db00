"""A sweep config: dataset, model, the grid (loss x optimizer or explicit cells, x trick settings x seed)
and the sweep-wide settings, validated as a whole: an unknown key, a wrong type, an unknown registered
name or a combination that cannot run is an error naming the field and the valid values."""
from __future__ import annotations

import itertools
from typing import Annotated, Any

from pydantic import Field, ValidationError, field_validator, model_validator

from gan_tasks.config.checks import check_applies, check_duplicates, check_grid_size, check_limits, check_program
from gan_tasks.config.early_stop import EarlyStop
from gan_tasks.config.entries import (NAME_MAX, SEED_MAX, _NAME, DatasetEntry, EvalConfig, Limits, LossEntry,
                                      ModelEntry, OptimizerEntry, Resources, TrainConfig, _entry, _Frozen,
                                      _resolve_kind)
from gan_tasks.config.eval_options import check_dataset_extractor, check_intra_fid
from gan_tasks.config.plugins import check_metrics, check_pin, check_requirement
from gan_tasks.config.published import Published
from gan_tasks.config.search import Search, check_search
from gan_tasks.data.datasets import dataset_spec
from gan_tasks.methods.catalog import LOSSES, MODELS, check_packable
from gan_tasks.methods.params import FieldError
from gan_tasks.methods.programs import DEFAULT_PROGRAM, PROGRAMS
from gan_tasks.methods.trick_settings import Tricks, check_tricks, merge_tricks


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
    seed: tuple[Annotated[int, Field(ge=0, le=SEED_MAX)], ...] = Field(min_length=1)  # one trial per seed per cell
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
    name: str  # letters, digits, - _ .; the default sweep id is <name>-<UTC time>
    # The kind of training (gan_tasks/methods/programs.py; `gansweep list programs`). The unconditional
    # GAN by default: every config written before programs existed means what it meant.
    program: str = DEFAULT_PROGRAM
    dataset: DatasetEntry
    model: ModelEntry
    grid: Grid
    train: TrainConfig = TrainConfig()
    resources: Resources = Resources()
    evaluation: EvalConfig = EvalConfig()
    # Seeds of one (loss, optimizer) cell trained together in one actor as one stacked model
    # (gan_tasks/training/packing.py). 1: off, each seed its own actor call; results do not depend on it.
    # At most 64: beyond that one actor's stacked model is a cluster's worth of seeds.
    pack_seeds: int = Field(1, ge=1, le=64)
    tricks: Tricks = Tricks()
    # A paper's table this sweep reproduces (gan_tasks/evaluation/published.py): rankings and the report put
    # it beside the measured values. None: a sweep of our own.
    published: Published | None = None
    # Stop hopeless trials at rungs of successive halving (gan_tasks/config/early_stop.py). None: every
    # trial trains its full budget. Not part of any trial id: it only cuts a trial short.
    early_stop: EarlyStop | None = None
    # Sampled settings per (loss, optimizer) cell instead of one (gan_tasks/config/search.py, docs/search.md).
    search: Search | None = None
    limits: Limits = Limits()  # raisable upper bounds on sizes (gan_tasks/config/checks.py)
    # Distributions the sweep's plugins must come from, as requirements ("my-gan-lib>=0.2"; config/plugins.py).
    plugins: tuple[str, ...] = ()
    # Third-party requirements of the plugins that a cluster's workers install (Ray runtime_env `pip`;
    # docs/plugins.md). Not installed locally: a local run uses the driver's environment.
    pip: tuple[str, ...] = ()

    @field_validator("plugins", mode="before")
    @classmethod
    def _pins(cls, v: Any) -> Any:
        return [check_pin(i, p) for i, p in enumerate(v)] if isinstance(v, (list, tuple)) else v

    @field_validator("pip", mode="before")
    @classmethod
    def _pip(cls, v: Any) -> Any:
        return [check_requirement(i, r) for i, r in enumerate(v)] if isinstance(v, (list, tuple)) else v

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

    @field_validator("program")
    @classmethod
    def _program(cls, v: str) -> str:
        PROGRAMS.get(v)  # unknown: the valid names
        return v

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
        kind = dataset_spec(self.dataset).kind
        _resolve_kind(self, kind, self.grid.pairs())
        if kind not in MODELS.get(self.model.name).data_kinds:
            valid = [m for m in MODELS.names() if kind in MODELS.get(m).data_kinds
                     and MODELS.get(m).program in (None, self.program)]  # cyclegan-resnet: its program only
            raise ValueError(f"model {self.model.name!r} cannot fit {kind} dataset {self.dataset.name!r}; "
                             f"valid models: {', '.join(valid)}")
        _check_model_fits(self)
        losses = self.grid.loss_names()
        check_tricks(self.tricks, losses, self.model.name)
        if self.grid.tricks:  # resolved here: merging needs the sweep-level tricks
            object.__setattr__(self.grid, "tricks", merge_tricks(self.tricks, self.grid.tricks, losses,
                                                                 self.model.name))
        _check_batch(self)
        check_duplicates(self.grid)  # after resolution: `lsgan` and `{name: lsgan, params: {a: 0}}` are one
        check_applies(self.evaluation, kind, self.dataset.name)
        if self.search is not None:
            check_search(self.search, search_cells(self), kind, len(self.grid.seed), self.limits.trials)
        if self.early_stop is not None:
            self.early_stop.check(self.train.steps, self.evaluation.eval_every, kind)
            if self.pack_seeds > 1:
                raise ValueError("early_stop needs pack_seeds: 1: packed seeds train as one model, none can stop alone")
            if self.search is not None and self.search.sampler == "tpe" and self.early_stop.decide == "cohort":
                raise FieldError("early_stop.decide", "cohort waits for a cell's every setting at each rung, but "
                                                      "tpe asks them in rounds: use sampler sobol or random")
        return self

    @model_validator(mode="after")
    def _evaluable(self) -> "SweepConfig":
        ev, spec = self.evaluation, dataset_spec(self.dataset)
        check_dataset_extractor(self.dataset.name, ev.feature_extractor, ev.classifier_dataset,
                                spec.shape[0] if spec.shape else None)
        check_metrics(self.evaluation.metrics, spec.kind)
        if PROGRAMS.get(self.program).labels and spec.kind == "images" and spec.classes is not None:
            fid_at = {"evaluation.fidelity_samples": ev.fidelity_samples}
            if ev.eval_every is not None:
                fid_at["evaluation.eval_every_samples"] = ev.eval_every_samples
            check_intra_fid(self.dataset.name, spec.classes(**self.dataset.params), ev.image_metrics, fid_at)
        return self

    @model_validator(mode="after")
    def _program_fits(self) -> "SweepConfig":
        check_program(self)  # pack_seeds, labelled data, tricks and the program's own checks
        return self

    @model_validator(mode="after")
    def _packable(self) -> "SweepConfig":
        for tricks in self.grid.tricks or (getattr(self, "tricks", None),):
            check_packable(self.pack_seeds, self.grid.loss_names(), tricks)
        return self


def search_cells(sweep: "SweepConfig") -> list[tuple[LossEntry, OptimizerEntry, str]]:
    """The resolved (loss, optimizer) cells a search samples, each with where the grid gives it."""
    g = sweep.grid
    where = (lambda i, lo, op: f"grid.cells.{i} ({lo.name}/{op.name})") if g.cells is not None else \
        (lambda i, lo, op: f"grid.loss {lo.name!r} x grid.optimizer {op.name!r}")  # noqa: E731
    return [(lo, op, where(i, lo, op)) for i, (lo, op) in enumerate(g.pairs())]


def _check_batch(sweep: "SweepConfig") -> None:
    """PacGAN packing splits a batch of samples into groups of pac; a batch of groups has pac x
    batch_size samples, which the batch-size limit bounds."""
    t, pacs = sweep.train, sorted({tr.pac for tr in sweep.grid.tricks or (sweep.tricks,)})
    if t.batch_unit == "groups":
        if t.batch_size * pacs[-1] > sweep.limits.batch_size:
            raise FieldError("train.batch_size", f"{t.batch_size:,} groups of {pacs[-1]} are {t.batch_size * pacs[-1]:,} "
                                                 f"samples a step, over the limit of {sweep.limits.batch_size:,} "
                                                 "(limits.batch_size)")
        return
    bad = [m for m in pacs if t.batch_size % m]
    if bad:
        raise FieldError("train.batch_size", f"{t.batch_size} is not divisible by tricks.pac {', '.join(map(str, bad))}: "
                                             "packing makes groups of pac samples; choose a multiple of every pac in "
                                             "the sweep, or count the batch in groups (train.batch_unit: groups)")


def _check_model_fits(sweep: "SweepConfig") -> None:
    """Image side lengths, and autoencoder discriminators only with the losses built for them."""
    model, ds = MODELS.get(sweep.model.name), dataset_spec(sweep.dataset)
    if model.sizes and ds.shape and ds.shape[-1] not in model.sizes:
        valid = [m for m in MODELS.names() if ds.shape[-1] in MODELS.get(m).sizes
                 and MODELS.get(m).program in (None, sweep.program)]
        raise ValueError(f"model {sweep.model.name!r} takes {'/'.join(map(str, model.sizes))}-pixel images, dataset "
                         f"{sweep.dataset.name!r} is {'x'.join(map(str, ds.shape))}; "
                         f"valid models: {', '.join(valid) or 'none'}")
    res = sweep.model.params.get("resolution")  # the dcgan family: one model, several sides
    if res is not None and (res not in model.sizes or (ds.shape and ds.shape[-1] != res)):
        fit = f"; set resolution {ds.shape[-1]}" if ds.shape and ds.shape[-1] in model.sizes else ""
        raise FieldError("model.params.resolution", f"{res}: model {sweep.model.name!r} makes {res}x{res} images "
                         f"(valid resolutions: {', '.join(map(str, model.sizes))}), dataset {sweep.dataset.name!r} "
                         f"is {'x'.join(map(str, ds.shape))}{fit}")
    for loss, _ in sweep.grid.pairs():
        if LOSSES.get(loss.name).autoencoder != model.autoencoder:
            ae = [m for m in MODELS.names() if MODELS.get(m).autoencoder]
            raise ValueError(f"grid.loss {loss.name!r} and model {sweep.model.name!r} do not fit: the began loss "
                             f"needs an autoencoder discriminator ({', '.join(ae)}) and those fit only began")
