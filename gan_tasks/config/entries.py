"""The entries of a sweep config, each a frozen, typed model: a loss, optimizer, dataset or model by
registered name with its parameters; train, resources, limits and evaluation settings. Validation
reads registries' metadata only (gan_tasks/methods/catalog.py): it never imports torch."""
from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from gan_tasks.config.eval_options import check_eval
from gan_tasks.data.datasets import DATASETS, resolve_params
from gan_tasks.errors import UserError
from gan_tasks.methods.catalog import LOSSES, MODELS, OPTIMIZERS
from gan_tasks.methods.metric_specs import METRICS
from gan_tasks.methods.params import FieldError, Strict, check_params
from gan_tasks.methods.registry import KINDS

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")  # fullmatch: `$` would let a trailing newline through
# 100 characters: a sweep id is the name plus a 16-character UTC stamp, and a file name may have 255.
NAME_MAX = 100
_RESOURCE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.:/-]{0,99}")  # a Ray custom resource's name
# Seeds are 32-bit: numpy's legacy seeding and every framework take them, and Parquet stores int64.
SEED_MAX = 2**32 - 1


class ConfigError(UserError, ValueError):
    """A sweep config that cannot run; the message names every bad field."""


class _Frozen(Strict):
    """Unknown keys refused, frozen, no NaN/inf, no bool for a number (gan_tasks/methods/params.py)."""


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
    lr_d: float | None = Field(None, gt=0, le=10)  # as lr_g, for D
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
    """A built-in dataset (name, params), or one added with `gansweep data add`: `NAME` or `NAME@ID` in the
    file, resolved from storage (gan_tasks/config/load.py) to its id, shape and classes, which the
    resolved config carries: the id is part of every trial's id."""

    name: str
    params: dict[str, Any] = Field(default_factory=dict)
    id: str | None = Field(None, pattern=r"^[0-9a-f]{12}$")  # None: a built-in dataset
    shape: tuple[int, ...] | None = None  # (C, H, W), from the dataset's manifest
    classes: int | None = Field(None, ge=0)  # class sub-folders; 0: unlabelled

    @model_validator(mode="before")
    @classmethod
    def _at(cls, data: Any) -> Any:
        """`name@id` pins a version."""
        if isinstance(data, dict) and isinstance(data.get("name"), str) and "@" in data["name"]:
            name, _, did = data["name"].partition("@")
            data = {**data, "name": name, "id": did}
        return data

    @model_validator(mode="after")
    def _resolve(self) -> "DatasetEntry":
        if not _NAME.fullmatch(self.name) or ".." in self.name:
            raise ValueError(f"dataset name {self.name!r} may hold only letters, digits, '-', '_', '.'")
        if self.name in DATASETS:
            if self.id or self.shape or self.classes is not None:
                raise ValueError(f"dataset {self.name!r} is built in: it takes params, not an id, shape or classes")
            object.__setattr__(self, "params", resolve_params(self.name, self.params))
        elif self.params:
            raise FieldError("params", f"dataset {self.name!r} (added with gansweep data add) takes no params")
        elif self.id is None or self.shape is None:
            raise ValueError(f"unknown dataset {self.name!r}; valid: {', '.join(DATASETS.names())}, or one added "
                             "with gansweep data add, which resolves from storage: give --storage URL to "
                             "gansweep validate")
        return self


class ModelEntry(_Frozen):
    name: str
    params: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _resolve(self) -> "ModelEntry":
        spec = MODELS.get(self.name)
        object.__setattr__(self, "params", check_params("model", self.name, self.params, spec.defaults, spec.schema))
        return self


class MetricEntry(_Frozen):
    """A metric named in evaluation.metrics (a plugin's; gan_tasks/methods/metric_specs.py), its params resolved."""

    name: str
    params: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _resolve(self) -> "MetricEntry":
        spec = METRICS.get(self.name)
        if spec.automatic:
            named = [n for n in METRICS.names() if n not in METRICS.builtin_names()]
            raise ValueError(f"metric {self.name!r} is measured on its datasets without being named; "
                             f"evaluation.metrics takes: {', '.join(named) or '(no plugin metric is installed)'}")
        object.__setattr__(self, "params", check_params("metric", self.name, self.params, spec.defaults, spec.schema))
        return self


class TrainConfig(_Frozen):
    steps: int = Field(2000, gt=0)  # generator steps
    # None: the default for the kind of data (TRAIN_BY_KIND), filled in when the sweep is resolved.
    batch_size: int | None = Field(None, gt=0)
    z_dim: int | None = Field(None, gt=0)  # G's noise size; None: the default for the kind of data
    # Decay of an exponential moving average of G's weights, used for every evaluation and sample
    # (Yazici et al. 2019); 0: off, the raw G is evaluated. Training itself never sees it.
    g_ema: float | None = Field(None, ge=0, lt=1)
    # How D and G update in a step (gan_tasks/training/programs/gan.py): alternating (d_steps D updates,
    # then G against the updated D) or simultaneous (both losses from one batch and one z at the same
    # parameters, then both optimisers step: PacGAN's code, ALI's algorithm).
    update: Literal["alternating", "simultaneous"] = "alternating"
    # What batch_size counts: samples, or PacGAN's packed groups of tricks.pac samples each (D then sees
    # batch_size groups a step, G makes batch_size x pac samples; with pac 1 the two are the same).
    batch_unit: Literal["samples", "groups"] = "samples"
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
    cpus_per_trial: float = Field(1.0, gt=0, le=512)  # Ray CPUs a trial's actor reserves
    max_parallel: int | None = Field(None, gt=0, le=100_000)  # None: as many as Ray can place
    # Ray custom resources a trial's actor asks for, {name: amount}, e.g. {gpu_node: 1} or {"accelerator_type:A100":
    # 0.5}: trials run only on nodes that advertise them (`ray start --resources`); preflight refuses a name no
    # alive node offers. Not part of the trial id (where a trial runs does not change what it computes).
    custom: dict[str, float] = Field(default_factory=dict)

    @field_validator("custom", mode="before")
    @classmethod
    def _custom(cls, v: Any) -> Any:
        for name, amount in (v.items() if isinstance(v, dict) else ()):
            if isinstance(amount, bool) or not isinstance(amount, (int, float)):
                raise ValueError(f"custom resource {name!r}: amount {amount!r} must be a number")
            if name in ("CPU", "GPU", "memory", "object_store_memory") or not _RESOURCE.fullmatch(name):
                raise ValueError(f"custom resource name {name!r}: letters, digits, _ - . : / (not CPU, GPU, "
                                 "memory; those have fields of their own)")
            if not 0 < amount <= 10_000:
                raise ValueError(f"custom resource {name!r}: amount {amount:g} must be > 0 and <= 10000")
        return v


class Limits(_Frozen):
    """Upper bounds on sizes, against typos (`steps: 1e20`, `batch_size: 10000000000`) that would start
    a cluster and then fail or run forever. A sweep that really means more raises one here, in its
    file (`limits: {steps: 50000000}`) or with `--set limits.steps=50000000`."""

    trials: int = Field(10_000, gt=0)  # trials per sweep: 10k rows is already a night on a cluster
    steps: int = Field(10_000_000, gt=0)  # generator steps (also log/checkpoint/eval intervals): ~1 day at 100/s
    batch_size: int = Field(65_536, gt=0)  # 2^16 images of 3x32x32 floats are 800 MB per batch
    samples: int = Field(1_000_000, gt=0)  # dataset n_samples and every evaluation sample count
    width: int = Field(4_096, gt=0)  # z_dim and model widths (mlp hidden: 4096^2 = 16.7M weights a layer)
    # uint8 bytes of a dataset `gansweep data add` writes (--max-bytes): 8 GiB is ~700k 3x64x64 images
    dataset_bytes: int = Field(8 << 30, gt=0)
    # bytes of plugin code a cluster run ships to its workers (py_modules): a package this large usually
    # carries data or checkpoints that belong in storage
    shipped_bytes: int = Field(50 << 20, gt=0)


class EvalConfig(_Frozen):
    n_samples: int = Field(2500, gt=0)  # PacGAN / VEEGAN: 2,500 samples for mode coverage
    # "high quality" = within 3 std of its nearest mode; at 100 std every sample is, which measures nothing.
    std_threshold: float = Field(3.0, gt=0, le=100)
    # Image metrics (gan_tasks/evaluation/fidelity.py). None: the dataset's in-domain classifier where it has
    # one (mnist, fashion-mnist; seed 004 scores IS with one), no image metrics otherwise.
    feature_extractor: str | None = None
    feature_extractor_weights_path: str | None = None  # local weights file; inception-v3 needs one
    # Pin a classifier by its content hash (16 hex digits, a file name in storage); None: current.json.
    classifier_hash: str | None = Field(None, pattern=r"^[0-9a-f]{16}$")
    # Which in-domain classifier scores a dataset added with `gansweep data add` (mnist, fashion-mnist);
    # None: the dataset's own (built-ins), none for an added one.
    classifier_dataset: str | None = None
    # Seeds the random subset of real training images the image metrics compare with (provenance.py).
    reference_seed: int = Field(0, ge=0)
    image_metrics: tuple[str, ...] = ("isc", "fid", "kid", "prc")  # torch-fidelity's IS, FID, KID, P/R
    fidelity_samples: int = Field(10_000, gt=0)  # generated and real images; 10k is the usual FID count
    stacked_samples: int = Field(26_000, gt=0)  # PacGAN counts Stacked MNIST modes over 26,000 samples
    eval_every: int | None = Field(None, gt=0)  # cheap metrics during training every N steps; None: off
    eval_every_samples: int = Field(1_000, gt=0)  # the cheap version's sample count (small-sample FID)
    # Metrics measured besides the dataset's own, by name (plugins: gan_tasks/methods/metric_specs.py).
    metrics: tuple[MetricEntry, ...] = ()

    @field_validator("metrics", mode="before")
    @classmethod
    def _metric_entries(cls, v: Any) -> Any:
        return [_entry(x) for x in v] if isinstance(v, (list, tuple)) else v

    @model_validator(mode="after")
    def _known(self) -> "EvalConfig":
        fid_at = {"fidelity_samples": self.fidelity_samples}
        if self.eval_every is not None:
            fid_at["eval_every_samples"] = self.eval_every_samples
        check_eval(self.feature_extractor, self.feature_extractor_weights_path, self.image_metrics, fid_at)
        return self


def _resolve_kind(cfg: Any, kind: str, pairs: list) -> None:
    """Every default that depends on the kind of data, filled in (in place: idempotent, frozen models)."""
    for loss, opt in pairs:
        loss.resolve(kind)
        opt.resolve(kind)
    object.__setattr__(cfg, "train", resolve_train(cfg.train, kind))
