"""One registry per kind of thing (loss, optimizer, model, dataset, metric).

Every entry is looked up by a short name; an unknown name is a ValueError that
lists the valid ones (torch-fidelity registry.py / stylegan2-ada metric_main.py
style). No if-chains on mode strings anywhere else in the code. Registries of the kinds in
plugins.GROUPS also find entries that installed distributions provide (gan_tasks/plugin_api.py).
"""
from __future__ import annotations

import importlib
from typing import Any, Callable, Generic, Iterator, TypeVar

from gan_tasks.methods.plugins import GROUPS, PluginError, Provider, providers

T = TypeVar("T")


class Registry(Generic[T]):
    """Entries by name. With `plugins`, names are also looked up in the installed distributions' entry
    points of the kind's group (gan_tasks/methods/plugins.py), each imported on its first lookup. With
    `spec`, every entry, built-in or plugin, must be an instance of it and pass its `check_spec()`."""

    def __init__(self, kind: str, spec: type | None = None, plugins: bool = False):
        self.kind, self.spec = kind, spec
        self.group = GROUPS[kind] if plugins else None
        self._items: dict[str, T] = {}
        self._docs: dict[str, str] = {}
        self._builtin: set[str] = set()
        self._providers: dict[str, Provider] = {}  # the plugin entries loaded so far

    def register(self, name: str, doc: str = "") -> Callable[[T], T]:
        def deco(obj: T) -> T:
            self.add(name, obj, doc or (getattr(obj, "__doc__", "") or "").strip().split("\n")[0])
            return obj

        return deco

    def add(self, name: str, obj: T, doc: str = "", provider: Provider | None = None) -> None:
        """The one way in, for built-ins and plugins alike: the spec's type and its own consistency checked."""
        where = f"plugin {name!r} of {provider.label}" if provider else f"{self.kind} {name!r}"
        if self.spec is not None and not isinstance(obj, self.spec):
            raise PluginError(f"{where} is not a {self.kind} spec: expected gan_tasks.plugin_api."
                              f"{self.spec.__name__}, got {type(obj).__name__}")
        if name in self._items:
            raise ValueError(f"{self.kind} {name!r} is registered twice")
        try:
            getattr(obj, "check_spec", lambda: None)()
        except ValueError as e:
            raise PluginError(f"{where} is an invalid spec: {e}") from None
        self._items[name] = obj
        self._docs[name] = doc or getattr(obj, "doc", "") or ""
        if provider is None:
            self._builtin.add(name)
        else:
            self._providers[name] = provider

    def _found(self, name: str) -> tuple[Provider, ...]:
        return providers(self.group).get(name, ()) if self.group else ()

    def get(self, name: str) -> T:
        found = self._found(name)
        if len(found) + (name in self._builtin) > 1:
            who = ["gansweep (built-in)"] * (name in self._builtin) + [p.label for p in found]
            raise PluginError(f"{self.kind} {name!r} is provided twice: by {' and by '.join(who)}")
        if name not in self._items and found:
            self.add(name, found[0].load(), provider=found[0])
        if name not in self._items:
            plugins = [f"{n} ({ps[0].dist} {ps[0].version})" for n, ps in self.plugins().items()]
            raise ValueError(f"unknown {self.kind} {name!r}; valid: {', '.join(self.builtin_names())}"
                             + (f"; plugins: {', '.join(plugins)}" if plugins else ""))
        return self._items[name]

    def adopt(self, name: str, provider: Provider) -> None:
        """An entry a driver resolved through `provider`, on a process that cannot discover it (its
        code shipped without its distribution's metadata); a no-op where the name resolves already."""
        if name not in self._items and not self._found(name):
            self.add(name, provider.load(), provider=provider)

    def __getitem__(self, name: str) -> T:
        return self.get(name)

    def __contains__(self, name: object) -> bool:
        return name in self._items or bool(isinstance(name, str) and self._found(name))

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def names(self) -> list[str]:
        """Built-in and plugin names (plugins not imported)."""
        return sorted(set(self._items) | set(self.plugins()))

    def builtin_names(self) -> list[str]:
        return sorted(self._builtin)

    def plugins(self) -> dict[str, tuple[Provider, ...]]:
        """The entry points of this registry's group by name, none imported."""
        return providers(self.group) if self.group else {}

    def provider(self, name: str) -> Provider | None:
        """The distribution a loaded entry came from; None for a built-in."""
        return self._providers.get(name)

    def doc(self, name: str) -> str:
        return self._docs.get(name, "")

    def describe(self) -> dict[str, str]:
        """Built-in names and their one-line docs (`gansweep list` adds the plugin entries)."""
        return {n: self._docs[n] for n in self.builtin_names()}


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
