"""Sweep-level checks that no single field can make: sizes against the sweep's raisable limits,
duplicate grid entries, evaluation options that do not apply to the dataset, and what a training
program cannot combine with.

Each raises a FieldError naming the field path and what is allowed; gan_tasks/config/sweep.py (SweepConfig) calls them
while validating, so they run before any Ray or Prefect work.
"""
from __future__ import annotations

import collections
import json
from typing import Any

from gan_tasks.methods.catalog import MODELS
from gan_tasks.data.datasets import DATASETS, dataset_spec
from gan_tasks.methods.params import FieldError
from gan_tasks.methods.programs import PROGRAMS

_RAISE = "raise it in the sweep file with `limits: {{{name}: N}}` or `--set limits.{name}=N` if you mean it"


def _over(path: str, value: Any, limits: Any, name: str) -> None:
    cap = getattr(limits, name)
    if value is not None and value > cap:
        raise FieldError(path, f"{value:,} is over the limit of {cap:,} (limits.{name}); " + _RAISE.format(name=name))


def _length(v: Any) -> int:
    return len(v) if isinstance(v, (list, tuple)) else 1


def check_grid_size(data: Any, limits: Any) -> Any:
    """Trials per sweep from the raw grid's lengths, before pydantic expands a million entries."""
    grid = data.get("grid") if isinstance(data, dict) else None
    if isinstance(grid, dict):
        cells = _length(grid["cells"]) if "cells" in grid else _length(grid.get("loss")) * _length(grid.get("optimizer"))
        n = cells * _length(grid.get("tricks") or [{}]) * _length(grid.get("seed"))
        if n > limits.trials:
            raise FieldError("grid", f"{n:,} trials is over the limit of {limits.trials:,} per sweep (limits.trials); "
                             + _RAISE.format(name="trials"))
    return data


def check_limits(sweep: Any) -> None:
    """Every size of the sweep against sweep.limits: train, evaluation, dataset and model sizes."""
    lim, t, ev = sweep.limits, sweep.train, sweep.evaluation
    for key in ("steps", "log_every", "checkpoint_every"):
        _over(f"train.{key}", getattr(t, key), lim, "steps")
    _over("train.batch_size", t.batch_size, lim, "batch_size")
    _over("train.z_dim", t.z_dim, lim, "width")
    _over("evaluation.eval_every", ev.eval_every, lim, "steps")
    for key in ("n_samples", "fidelity_samples", "stacked_samples", "eval_every_samples"):
        _over(f"evaluation.{key}", getattr(ev, key), lim, "samples")
    for where, entry, spec in (("dataset", sweep.dataset, dataset_spec(sweep.dataset)),
                               ("model", sweep.model, MODELS.get(sweep.model.name))):
        for key, s in spec.schema.items():
            if getattr(s, "limit", None):
                _over(f"{where}.params.{key}", entry.params.get(key), lim, s.limit)


def _dupes(path: str, entries: list, what: str) -> None:
    """Linear: a Counter over each entry's JSON, not a pairwise comparison."""
    keys = [json.dumps(e.model_dump(mode="json") if hasattr(e, "model_dump") else e, sort_keys=True) for e in entries]
    twice = [k for k, n in collections.Counter(keys).items() if n > 1]
    if twice:
        first = keys.index(twice[0])
        again = keys.index(twice[0], first + 1)
        resolved = " once defaults are filled in" if what != "seed" else ""
        raise FieldError(path, f"entries {first} and {again} are the same {what} ({_short(entries[first])}){resolved}: "
                         "they would train identical trials; remove one")


def _short(e: Any) -> str:
    s = json.dumps(e.model_dump(mode="json") if hasattr(e, "model_dump") else e, sort_keys=True)
    return s if len(s) <= 120 else s[:117] + "..."


def check_duplicates(grid: Any) -> None:
    """grid.seed, grid.loss, grid.optimizer, grid.cells and grid.tricks each without repeats."""
    _dupes("grid.seed", list(grid.seed), "seed")
    if grid.cells is not None:
        _dupes("grid.cells", [{"loss": c.loss.model_dump(), "optimizer": c.optimizer.model_dump()}
                              for c in grid.cells], "cell")
    else:
        _dupes("grid.loss", list(grid.loss), "loss")
        _dupes("grid.optimizer", list(grid.optimizer), "optimizer")
    if grid.tricks:
        _dupes("grid.tricks", list(grid.tricks), "trick setting")


# Evaluation options that only image datasets use (fidelity metrics, classifiers), and the one only
# the stacked-MNIST coverage uses. Set on a dataset they do not apply to, they are a mistake.
_IMAGE_ONLY = ("feature_extractor", "feature_extractor_weights_path", "classifier_hash", "image_metrics",
               "fidelity_samples", "classifier_dataset", "reference_seed")
_POINTS_ONLY = ("std_threshold",)  # n_samples is also the image datasets' generic sample count


def check_applies(ev: Any, kind: str, dataset: str) -> None:
    """An evaluation option the user set that does nothing for this dataset is an error, not ignored."""
    set_ = [k for k in sorted(ev.model_fields_set) if getattr(ev, k) != type(ev).model_fields[k].default]
    for key in set_:  # a dumped config lists every default: only a value that differs is "set"
        if (key in _IMAGE_ONLY and kind != "images") or (key in _POINTS_ONLY and kind != "points") \
                or (key == "stacked_samples" and dataset != "stacked-mnist"):
            applies = "stacked-mnist" if key == "stacked_samples" else ("image" if kind != "images" else "2-D")
            raise FieldError(f"evaluation.{key}", f"applies to {applies} datasets only; dataset {dataset!r} "
                                                  f"is {kind}: remove it")


def check_program(sweep: Any) -> None:
    """What the sweep's program (gan_tasks/methods/programs.py) cannot combine with, naming the field."""
    name, spec = sweep.program, PROGRAMS.get(sweep.program)
    if sweep.pack_seeds > 1 and not spec.packable:
        ok = [n for n in PROGRAMS.names() if PROGRAMS.get(n).packable]
        raise FieldError("pack_seeds", f"program {name!r} cannot be seed-packed (packing stacks the plain GAN step); "
                                       f"set pack_seeds: 1, or use a packable program: {', '.join(ok)}")
    if spec.labels and dataset_spec(sweep.dataset).classes is None:
        ok = [n for n in DATASETS.names() if DATASETS.get(n).classes is not None]
        added = " (added without --labels subfolders)" if sweep.dataset.id else ""
        raise FieldError("dataset", f"program {name!r} trains on class labels; dataset {sweep.dataset.name!r} has "
                                    f"none{added}; datasets with labels: {', '.join(ok)}, or one added with "
                                    "gansweep data add --labels subfolders")
    if sweep.pack_seeds > 1 and sweep.dataset.id:
        raise FieldError("pack_seeds", f"dataset {sweep.dataset.name!r} (added with gansweep data add) trains "
                                       "one seed per actor: set pack_seeds: 1")
    model = MODELS.get(sweep.model.name)
    if model.program not in (None, name):  # networks built for one program only (cyclegan-resnet)
        ok = [n for n in MODELS.names() if MODELS.get(n).program is None]
        raise FieldError("model", f"model {sweep.model.name!r} builds the networks of program {model.program!r}, not "
                                  f"{name!r}; set program: {model.program}, or a model of G(z) and D(x): {', '.join(ok)}")
    if (dataset_spec(sweep.dataset).two_domain is not None) != spec.two_domain:
        ok = [n for n in DATASETS.names() if (DATASETS.get(n).two_domain is not None) == spec.two_domain]
        two = [n for n in PROGRAMS.names() if PROGRAMS.get(n).two_domain]
        what = "an unpaired two-domain dataset" if spec.two_domain else \
            f"a one-domain dataset (two-domain ones train with {', '.join(two)})"
        raise FieldError("dataset", f"program {name!r} needs {what}; {sweep.dataset.name!r} is not; valid: {', '.join(ok)}")
    if spec.tricks is not None:
        for i, t in enumerate(sweep.grid.tricks or (sweep.tricks,)):
            off = type(t)()
            bad = [k for k in type(t).model_fields if getattr(t, k) != getattr(off, k) and k not in spec.tricks]
            if bad:
                where = f"grid.tricks.{i}" if sweep.grid.tricks else "tricks"
                raise FieldError(f"{where}.{bad[0]}", f"program {name!r} cannot apply it; its tricks: "
                                                      f"{', '.join(spec.tricks) or 'none'}")
    if spec.check:
        spec.check(sweep)
    check_update(sweep)


def check_update(sweep: Any) -> None:
    """train.update: simultaneous takes both losses at the same parameters: one D step per G step, no
    look-ahead D (unrolled_steps), and a program whose step is the GAN program's."""
    if sweep.train.update != "simultaneous":
        return
    name = sweep.program
    if not PROGRAMS.get(name).simultaneous:
        ok = [n for n in PROGRAMS.names() if PROGRAMS.get(n).simultaneous]
        raise FieldError("train.update", f"program {name!r} updates alternately only; simultaneous: {', '.join(ok)}")
    for t in sweep.grid.tricks or (sweep.tricks,):
        if t.unrolled_steps:
            raise FieldError("train.update", "simultaneous cannot be combined with tricks.unrolled_steps (G steps "
                                             "against a look-ahead D); set update: alternating")
        for loss, _ in sweep.grid.pairs():
            d_steps = t.d_steps or int(loss.params.get("d_steps", 1))
            if d_steps > 1:
                raise FieldError("train.update", f"simultaneous takes one D step per G step; loss {loss.name!r} "
                                                 f"takes {d_steps} (tricks.d_steps or the loss's params.d_steps): set "
                                                 "d_steps: 1, or update: alternating")
