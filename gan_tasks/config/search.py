"""A sweep's `search:` block: per (loss, optimizer) cell of the grid, `budget` settings sampled from each
parameter's space, every one a normal trial (docs/search.md; Lucic et al. 2018, "Are GANs Created Equal?").

Spaces default to the ranges the registry entries declare on their typed parameters (`search=` of Num,
Choice, Seq; OptimizerSpec.lr_search: gan_tasks/methods/catalog.py); `space:` adds or narrows one by name
(`lr`, `gp_lambda`, `betas.0`). The samplers are Optuna's (ask/tell, in memory), seeded from
(search.seed, the cell): a setting is a deterministic function of (seed, cell, index), and a larger budget
asks the same sequence further, so it only adds settings. Validation reads no results and trains nothing.
"""
from __future__ import annotations

import hashlib
import json
import math
import warnings
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from gan_tasks.config.early_stop import MIXTURE_METRICS
from gan_tasks.config.entries import LossEntry, OptimizerEntry, _Frozen
from gan_tasks.config.scores import DIRECTIONS, RankedMetrics
from gan_tasks.methods.catalog import LOSSES, OPTIMIZERS
from gan_tasks.methods.params import SPACE_KINDS, FieldError, Num, Seq, Space


class Search(_Frozen):
    budget: int = Field(ge=1, le=100_000)  # settings sampled per (loss, optimizer) cell, equal for every cell
    # Optuna's RandomSampler, scrambled QMC (Sobol) sampler, or TPE in rounds (gan_tasks/config/tpe.py)
    sampler: Literal["random", "sobol", "tpe"] = "sobol"
    n_startup: int | None = Field(None, ge=1)  # tpe: the first N settings from Sobol (default 8, at most budget)
    round_size: int | None = Field(None, ge=1)  # tpe: settings asked per round, told the earlier ones' scores (4)
    seed: int = Field(0, ge=0, le=2**32 - 1)  # the samplers' seed; with the cell it fixes every setting
    seeds_per_setting: int = Field(1, ge=1, le=1_000)  # each setting trains grid.seed's first N seeds
    # What picks each cell's best setting for the confirm stage: a metric, or several (mean rank over them, so
    # one metric alone cannot pick a collapsed or unlearnt generator). Budget curves are drawn for every metric.
    metric: RankedMetrics
    # Per parameter name: {log_uniform: [lo, hi]} | {uniform: [lo, hi]} | {int: [lo, hi]} | {choice: [v, ...]}.
    space: dict[str, dict[str, list]] = Field(default_factory=dict)
    use_declared: bool = True  # also search every parameter whose entry declares a range (and the grid leaves free)
    confirm_seeds: int = Field(5, ge=0, le=1_000)  # the confirm stage: each cell's best setting on N new seeds

    @model_validator(mode="after")
    def _rounds(self) -> "Search":
        if self.sampler != "tpe":
            for name in ("n_startup", "round_size"):
                if getattr(self, name) is not None:
                    raise FieldError(name, f"only sampler tpe trains in rounds; {self.sampler} "
                                                       "samples every setting up front: remove it")
            return self
        n = 8 if self.n_startup is None else self.n_startup
        if n > self.budget:
            raise FieldError("n_startup", f"{n} start-up settings, over the budget of {self.budget}: "
                                                 "lower n_startup or raise the budget")
        return self.model_copy(update={"n_startup": n, "round_size": self.round_size or 4})

    @property
    def metrics(self) -> tuple[str, ...]:
        return (self.metric,) if isinstance(self.metric, str) else self.metric

    @field_validator("space", mode="before")
    @classmethod
    def _spaces(cls, v: Any) -> Any:
        if not isinstance(v, dict):
            return v
        return {str(k): _raw_space(str(k), s) for k, s in v.items()}

    def spaces(self) -> dict[str, Space]:
        return {k: to_space(s) for k, s in self.space.items()}


def _num(path: str, x: Any) -> float:
    if isinstance(x, str):  # YAML 1.1 reads `1e-5` as a string
        try:
            x = float(x)
        except ValueError:
            pass
    if isinstance(x, bool) or not isinstance(x, (int, float)) or not math.isfinite(x):
        raise FieldError(path, f"expected a finite number, got {x!r}")
    return x


def _raw_space(name: str, s: Any) -> dict[str, list]:
    """One space as written, checked on its own: one kind, a non-empty range the right way round."""
    path = name  # below search.space, which pydantic names
    if not isinstance(s, dict) or len(s) != 1 or next(iter(s)) not in SPACE_KINDS:
        raise FieldError(path, f"expected one of {{{': [lo, hi]}, {'.join(SPACE_KINDS[:3])}: [lo, hi]}} or "
                               f"{{choice: [v, ...]}}, got {s!r}"[:300])
    kind, v = next(iter(s.items()))
    if kind == "choice":
        if not isinstance(v, list) or not v:
            raise FieldError(path, f"choice needs a non-empty list of values, got {v!r}")
        if len({json.dumps(x) for x in v}) != len(v):
            raise FieldError(path, f"choice lists a value twice: {v!r}")
        return {kind: list(v)}
    if not isinstance(v, list) or len(v) != 2:
        raise FieldError(path, f"{kind} needs [lo, hi], got {v!r}")
    lo, hi = (_num(path, x) for x in v)
    if kind == "int" and not all(float(x).is_integer() for x in (lo, hi)):
        raise FieldError(path, f"int needs integer bounds, got [{lo}, {hi}]")
    if lo >= hi:
        raise FieldError(path, f"{'empty' if lo == hi else 'inverted'} range [{lo:g}, {hi:g}]: needs lo < hi")
    if kind == "log_uniform" and lo <= 0:
        raise FieldError(path, f"log_uniform range [{lo:g}, {hi:g}] touches zero: needs 0 < lo < hi")
    return {kind: [int(lo), int(hi)] if kind == "int" else [float(lo), float(hi)]}


def to_space(s: dict[str, list]) -> Space:
    kind, v = next(iter(s.items()))
    return Space(kind, values=tuple(v)) if kind == "choice" else Space(kind, v[0], v[1])


@dataclass(frozen=True)
class Param:
    """A searchable parameter of one cell: whose (loss / optimizer), its key (and element of a list)."""

    owner: str
    key: str
    index: int | None
    spec: Any  # Num or Choice of the value
    declared: Space | None  # the entry's default range
    fixed: bool  # the grid entry sets it to other than its default


def declared_params(loss: LossEntry, opt: OptimizerEntry, kind: str) -> dict[str, Param]:
    """Every parameter of a resolved (loss, optimizer) cell a search may sample, by name."""
    out: dict[str, Param] = {}
    lspec, ospec = LOSSES.get(loss.name), OPTIMIZERS.get(opt.name)
    for owner, entry, schema, defaults in (("loss", loss, lspec.schema, lspec.defaults_for(kind)),
                                           ("optimizer", opt, ospec.schema, ospec.defaults_for(kind))):
        for key, spec in schema.items():
            if key not in entry.params:
                continue
            value, default = entry.params[key], defaults.get(key)
            if isinstance(spec, Seq):
                for i in range(spec.n):
                    space = spec.search[i] if i < len(spec.search) else None
                    out[f"{key}.{i}"] = Param(owner, key, i, spec.item, space, value[i] != default[i])
            else:
                out[key] = Param(owner, key, None, spec, spec.search, value != default)
    lr = ospec.lr_for(kind)
    out["lr"] = Param("optimizer", "lr", None, Num(float, 0, 10, lo_open=True), ospec.lr_search,
                      opt.lr_g != lr or opt.lr_d != lr)
    return out


def _fits(name: str, space: Space, p: Param, where: str) -> None:
    """An explicit space against the parameter's type and range (an open bound may be a continuous range's end)."""
    path, spec = f"search.space.{name}", p.spec
    if space.kind == "choice":
        for v in space.values:
            try:
                spec.check(v)
            except ValueError as e:
                raise FieldError(path, f"{e} ({where})") from None
        return
    if not isinstance(spec, Num):
        raise FieldError(path, f"{space.kind} needs a number; {name} takes {spec.describe()} ({where}): use choice")
    if (space.kind == "int") != (spec.type is int):
        raise FieldError(path, f"{space.kind} does not fit {name}, {spec.describe()} ({where}): use "
                               f"{'int' if spec.type is int else 'uniform or log_uniform'}")
    for bound, is_hi in ((space.lo, False), (space.hi, True)):
        edge = spec.hi if is_hi else spec.lo
        opened = spec.hi_open if is_hi else spec.lo_open
        if space.kind != "int" and opened and bound == edge:
            continue
        try:
            spec.check(bound)
        except ValueError:
            raise FieldError(path, f"[{space.lo:g}, {space.hi:g}] leaves {name}'s range: {spec.describe()} "
                                   f"({where})") from None


def cell_spaces(search: Search, loss: LossEntry, opt: OptimizerEntry, kind: str, where: str) -> dict[str, Space]:
    """The space of each parameter searched in this cell, by name (sorted): explicit ones, then declared ones."""
    params, explicit, out = declared_params(loss, opt, kind), search.spaces(), {}
    for name, p in params.items():
        if name in explicit:
            if p.fixed:
                raise FieldError(f"search.space.{name}", f"{where} fixes {name} (a value other than its default): "
                                                         "remove the space or the grid's value")
            _fits(name, explicit[name], p, where)
            out[name] = explicit[name]
        elif search.use_declared and p.declared is not None and not p.fixed:
            out[name] = p.declared
    return dict(sorted(out.items()))


def check_search(search: Search, cells: list[tuple[LossEntry, OptimizerEntry, str]], kind: str,
                 seeds: int, trial_limit: int) -> None:
    """The search against the grid: metric logged for this data, every explicit space some cell's parameter,
    enough seeds, and the trials within limits.trials."""
    for m in search.metrics:
        if (m in MIXTURE_METRICS) != (kind == "points"):
            valid = sorted(MIXTURE_METRICS if kind == "points" else set(DIRECTIONS) - MIXTURE_METRICS)
            raise FieldError("search.metric", f"{m!r} is not measured on {kind} data; valid: {', '.join(valid)}")
    declared: set[str] = set()
    for loss, opt, where in cells:
        declared |= set(declared_params(loss, opt, kind))
        cell_spaces(search, loss, opt, kind, where)
    unknown = sorted(set(search.space) - declared)
    if unknown:
        raise FieldError(f"search.space.{unknown[0]}", f"no loss or optimizer of the grid declares {unknown[0]!r}; "
                                                       f"declared: {', '.join(sorted(declared))}")
    if search.seeds_per_setting > seeds:
        raise FieldError("search.seeds_per_setting", f"{search.seeds_per_setting} seeds per setting, but grid.seed "
                                                     f"lists {seeds}: list as many seeds")
    n = len(cells) * (search.budget * search.seeds_per_setting + search.confirm_seeds)
    if n > trial_limit:
        raise FieldError("search.budget", f"{len(cells)} cells x ({search.budget} settings x "
                                          f"{search.seeds_per_setting} seeds + {search.confirm_seeds} confirm seeds) "
                                          f"= {n:,} trials, over the limit of {trial_limit:,} (limits.trials); "
                                          "raise it "
                                          "with `limits: {trials: N}` if you mean it")


def sampler_seed(seed: int, cell_key: str) -> int:
    """The cell's sampler seed: a hash of (search.seed, the cell), so cells draw independent sequences."""
    return int.from_bytes(hashlib.sha256(f"{seed}|{cell_key}".encode()).digest()[:4], "big")


def _distribution(space: Space):
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    if space.kind == "choice":
        return CategoricalDistribution(space.values)
    if space.kind == "int":
        return IntDistribution(int(space.lo), int(space.hi))
    return FloatDistribution(space.lo, space.hi, log=space.kind == "log_uniform")


def sample(search: Search, spaces: dict[str, Space], cell_key: str, budget: int | None = None) -> list[dict]:
    """The cell's first `budget` settings ({name: value}), asked in order from one seeded Optuna study."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    budget, seed = budget or search.budget, sampler_seed(search.seed, cell_key)
    if not spaces:
        return [{} for _ in range(budget)]
    dists = {k: _distribution(s) for k, s in spaces.items()}
    with warnings.catch_warnings():  # Sobol's "balance properties" note on budgets that are not powers of 2
        warnings.simplefilter("ignore")
        if search.sampler == "sobol":  # scrambled with the cell's seed; every point from the sequence
            sampler = optuna.samplers.QMCSampler(qmc_type="sobol", scramble=True, seed=seed,
                                                 warn_independent_sampling=False)
        else:
            sampler = optuna.samplers.RandomSampler(seed=seed)
        study = optuna.create_study(sampler=sampler)
        if search.sampler == "sobol":  # the space, known up front: QMCSampler would draw the first point at random
            study.add_trial(optuna.trial.create_trial(params={k: _low(s) for k, s in spaces.items()},
                                                      distributions=dists, value=0.0))
        out = []
        for _ in range(budget):
            trial = study.ask(dists)
            out.append({k: _round(trial.params[k], s) for k, s in spaces.items()})
            study.tell(trial, 0.0)
    return out


def _low(space: Space) -> Any:
    return space.values[0] if space.kind == "choice" else (int(space.lo) if space.kind == "int" else space.lo)


def _round(v: Any, space: Space) -> Any:
    """Floats to 4 significant digits (readable labels), unless that reaches the range's upper end."""
    if not isinstance(v, float) or space.kind == "choice":
        return v
    r = float(f"{v:.4g}")
    return r if space.lo <= r < space.hi else v


def apply_setting(loss: LossEntry, opt: OptimizerEntry, setting: dict, kind: str) -> tuple[LossEntry, OptimizerEntry]:
    """The cell's entries with the setting's values in place (lr sets both lr_g and lr_d)."""
    params = declared_params(loss, opt, kind)
    lp, op, lr = dict(loss.params), dict(opt.params), {}
    for name, v in setting.items():
        p = params[name]
        target = lp if p.owner == "loss" else op
        if name == "lr":
            lr = {"lr_g": v, "lr_d": v}
        elif p.index is None:
            target[p.key] = v
        else:
            seq = list(target[p.key])
            seq[p.index] = v
            target[p.key] = seq
    return (LossEntry(name=loss.name, params=lp),
            OptimizerEntry(name=opt.name, lr_g=lr.get("lr_g", opt.lr_g), lr_d=lr.get("lr_d", opt.lr_d), params=op))
