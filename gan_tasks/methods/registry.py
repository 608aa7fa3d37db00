"""One registry per kind of thing (loss, optimizer, model, dataset, metric).

Every entry is looked up by a short name; an unknown name is a ValueError that
lists the valid ones (torch-fidelity registry.py / stylegan2-ada metric_main.py
style). No if-chains on mode strings anywhere else in the code.
"""
from __future__ import annotations

import importlib
from typing import Any, Callable, Generic, Iterator, TypeVar

T = TypeVar("T")


class Registry(Generic[T]):
    def __init__(self, kind: str):
        self.kind = kind
        self._items: dict[str, T] = {}
        self._docs: dict[str, str] = {}

    def register(self, name: str, doc: str = "") -> Callable[[T], T]:
        def deco(obj: T) -> T:
            self.add(name, obj, doc or (getattr(obj, "__doc__", "") or "").strip().split("\n")[0])
            return obj

        return deco

    def add(self, name: str, obj: T, doc: str = "") -> None:
        if name in self._items:
            raise ValueError(f"{self.kind} {name!r} is registered twice")
        self._items[name] = obj
        self._docs[name] = doc

    def get(self, name: str) -> T:
        if name not in self._items:
            raise ValueError(f"unknown {self.kind} {name!r}; valid: {', '.join(self.names())}")
        return self._items[name]

    def __getitem__(self, name: str) -> T:
        return self.get(name)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def names(self) -> list[str]:
        return sorted(self._items)

    def describe(self) -> dict[str, str]:
        return {n: self._docs[n] for n in self.names()}


# The kinds of data a default may depend on (DatasetSpec.kind): 2-D mixtures and images. A toy MLP
# on 8 points of radius 1 and a DCGAN on MNIST want different learning rates, penalties and batches.
KINDS = ("points", "images")


def for_kind(defaults: dict[str, Any], by_kind: dict[str, dict[str, Any]], kind: str) -> dict[str, Any]:
    """An entry's defaults for one kind of data: the shared ones, overlaid with the kind's own."""
    if kind not in KINDS:
        raise ValueError(f"unknown kind of data {kind!r}; valid: {', '.join(KINDS)}")
    return {**defaults, **by_kind.get(kind, {})}



class Ref:
    """A callable named "module:attribute", imported on its first call. Registries name their torch
    code this way, so that reading them (validation, `gansweep list`) never imports torch."""

    def __init__(self, target: str):
        self.target, self._obj = target, None

    def get(self) -> Any:
        if self._obj is None:
            module, _, attr = self.target.partition(":")
            self._obj = getattr(importlib.import_module(module), attr)
        return self._obj

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.get()(*args, **kwargs)

    def __repr__(self) -> str:
        return f"Ref({self.target!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Ref) and other.target == self.target

    def __hash__(self) -> int:
        return hash(self.target)

    def __getstate__(self) -> dict:  # pickled (Ray) by name; the target is imported again on arrival
        return {"target": self.target, "_obj": None}
