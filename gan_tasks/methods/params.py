"""Typed, bounded parameters: one schema per registered entry, and the base of every config model.

Torch-free: validation (`gansweep validate`, and `run` before Ray or Prefect start) imports only
this, pydantic and the registries' metadata. A bad value is a FieldError naming its path below the
pydantic field that holds it (`grid.loss.1` + `params.gp_lambda`) and the allowed values.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Union, get_args

from pydantic import BaseModel, ConfigDict, model_validator


class FieldError(ValueError):
    """A bad value at `path` (dotted, relative to where it is raised); gan_tasks/config/load.py (_format) joins the paths."""

    def __init__(self, path: str, msg: str):
        super().__init__(f"{path}: {msg}")
        self.path, self.msg = path, msg


def _show(v: Any) -> str:
    s = repr(v)
    return s if len(s) <= 60 else s[:57] + "..."  # a 10 MB value is not echoed back


SPACE_KINDS = ("log_uniform", "uniform", "int", "choice")


@dataclass(frozen=True)
class Space:
    """Where a hyper-parameter search samples a parameter (gan_tasks/config/search.py): log_uniform / uniform /
    int over [lo, hi], or choice among `values`. A registry entry declares one per parameter worth searching."""

    kind: str  # one of SPACE_KINDS
    lo: float | None = None
    hi: float | None = None
    values: tuple = ()

    def describe(self) -> str:
        return f"choice {list(self.values)}" if self.kind == "choice" else f"{self.kind} [{self.lo:g}, {self.hi:g}]"


@dataclass(frozen=True)
class Num:
    """An int or a float within [lo, hi]; lo_open / hi_open exclude the bound itself.

    `limit` names a raisable sweep limit (config.Limits) that also caps it: sizes, not ranges."""

    type: type  # int or float
    lo: float | None = None
    hi: float | None = None
    lo_open: bool = False
    hi_open: bool = False
    limit: str | None = None
    search: Space | None = None  # the range a search samples by default; None: not searched unless asked

    def describe(self) -> str:
        fmt = (lambda x: f"{int(x):,}") if self.type is int else (lambda x: f"{x:g}")  # noqa: E731
        lo = "-inf" if self.lo is None else fmt(self.lo)
        hi = f"limits.{self.limit}" if self.limit else ("inf" if self.hi is None else fmt(self.hi))
        return f"{'an integer' if self.type is int else 'a number'} in {'(' if self.lo_open else '['}{lo}, {hi}" \
               f"{')' if self.hi_open or hi == 'inf' else ']'}"

    def check(self, v: Any) -> Any:
        if isinstance(v, str) and self.type is float:  # YAML 1.1 reads `1e-3` as a string
            try:
                v = float(v)
            except ValueError:
                pass
        ok_type = (isinstance(v, int) if self.type is int else isinstance(v, (int, float))) and not isinstance(v, bool)
        if not ok_type or (isinstance(v, float) and not math.isfinite(v)):
            raise ValueError(f"expected {self.describe()}, got {_show(v)}")
        if self.lo is not None and (v <= self.lo if self.lo_open else v < self.lo) or \
                self.hi is not None and (v >= self.hi if self.hi_open else v > self.hi):
            raise ValueError(f"{_show(v)} is out of range: expected {self.describe()}")
        return v


@dataclass(frozen=True)
class Choice:
    values: tuple[str, ...]
    search: Space | None = None

    def describe(self) -> str:
        return f"one of {', '.join(self.values)}"

    def check(self, v: Any) -> Any:
        if v not in self.values or not isinstance(v, str):
            raise ValueError(f"expected {self.describe()}, got {_show(v)}")
        return v


@dataclass(frozen=True)
class Seq:
    """A list of exactly n values, each checked by `item` (Adam's betas)."""

    item: Num | Choice
    n: int
    # Per element, the range a search samples by default (Adam's beta1 alone: (Space(...), None)); element i
    # is the search parameter `<name>.<i>`.
    search: tuple[Space | None, ...] = ()

    def describe(self) -> str:
        return f"a list of {self.n} values, each {self.item.describe()}"

    def check(self, v: Any) -> Any:
        if not isinstance(v, (list, tuple)) or len(v) != self.n:
            raise ValueError(f"expected {self.describe()}, got {_show(v)}")
        try:
            return [self.item.check(x) for x in v]
        except ValueError:
            raise ValueError(f"expected {self.describe()}, got {_show(v)}") from None


Spec = Union[Num, Choice, Seq]


def check_params(kind: str, name: str, params: dict[str, Any], allowed: dict[str, Any],
                 schema: dict[str, Spec]) -> dict[str, Any]:
    """The given params checked against the entry's schema (unknown key, type, range), merged over
    `allowed` (its defaults). Errors name `params.<key>` and what the key takes."""
    if not isinstance(params, dict):
        raise FieldError("params", f"expected a mapping of {kind} {name!r}'s parameters, got {_show(params)}")
    unknown = sorted(set(map(str, params)) - set(allowed))
    if unknown:
        raise ValueError(f"{kind} {name!r} has no parameter {', '.join(map(repr, unknown))}; "
                         f"valid: {', '.join(sorted(allowed)) or '(none)'}")
    out = dict(params)
    for key, v in params.items():
        try:
            out[key] = schema[key].check(v)
        except ValueError as e:
            raise FieldError(f"params.{key}", f"{e} ({kind} {name!r})") from None
    return {**allowed, **out}


def check_spec_params(defaults: dict[str, Any], schema: dict[str, Spec | None]) -> None:
    """A spec's own consistency: every default has a type (its `params` row or the shared table's) and lies
    in its range, and every declared parameter has a default. ValueError naming the parameter."""
    missing = sorted(set(schema) - set(defaults))
    if missing:
        raise ValueError(f"parameter {missing[0]!r} has no default")
    for key, v in defaults.items():
        if schema.get(key) is None:
            raise ValueError(f"default {key}={_show(v)} has no type: declare it in params (Num, Choice or Seq)")
        try:
            schema[key].check(v)
        except ValueError as e:
            raise ValueError(f"default {key}: {e}") from None


def describe_schema(schema: dict[str, Spec], defaults: dict[str, Any]) -> str:
    """'key: range (default d)' per parameter; `gansweep list` prints it."""
    return "; ".join(f"{k} {s.describe()} (default {defaults.get(k)}{_searched(s)})" for k, s in schema.items())


def _searched(s: Spec) -> str:
    """', search log_uniform [0.1, 100]': the range a search samples by default (docs/search.md), if any."""
    if isinstance(s, Seq):
        parts = [f"element {i} {sp.describe()}" for i, sp in enumerate(s.search) if sp is not None]
        return f", search {'; '.join(parts)}" if parts else ""
    return f", search {s.search.describe()}" if getattr(s, "search", None) else ""


def _types(t: Any) -> set:
    return {t}.union(*(_types(a) for a in get_args(t)))


class Strict(BaseModel):
    """Base of the config models: unknown keys refused, frozen, no NaN or infinity anywhere, and no
    bool where a number belongs (pydantic's lax mode would read `steps: true` as 1)."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    @model_validator(mode="before")
    @classmethod
    def _no_bools(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        for name, f in cls.model_fields.items():
            types, v = _types(f.annotation), data.get(name)
            if bool in types or not types & {int, float}:
                continue
            items = v if isinstance(v, (list, tuple)) else [v]
            for i, x in enumerate(items):
                if isinstance(x, bool):
                    where = f"{name}.{i}" if isinstance(v, (list, tuple)) else name
                    raise FieldError(where, f"expected a number, got {x} (a bool)")
        return data


def describe_field(f: Any) -> str:
    """A pydantic field's type and bounds as `gansweep list` shows them: 'int | None, > 0, <= 100'."""
    names = [getattr(t, "__name__", str(t)) for t in get_args(f.annotation) or (f.annotation,)]
    ops = {"gt": ">", "ge": ">=", "lt": "<", "le": "<=", "pattern": "matching"}
    bounds = [f"{ops[k]} {getattr(m, k)}" for m in f.metadata for k in ops if getattr(m, k, None) is not None]
    return f"{' | '.join(n.replace('NoneType', 'None') for n in names)}{', ' if bounds else ''}{', '.join(bounds)}"
