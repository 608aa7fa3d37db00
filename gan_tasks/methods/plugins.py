"""Plugins: entries of the registries provided by other distributions through Python entry points.

One entry-point group per registry (GROUPS); an entry point's name is the registered name, its value
("module:attr") a spec object built with gan_tasks/plugin_api.py. Discovery reads only the installed
distributions' metadata; an entry point is imported when its name is looked up (Registry.get) or
listed, so a broken plugin breaks nothing that does not use it. Torch-free, like the specs.
"""
from __future__ import annotations

import functools
import hashlib
import importlib.util
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from gan_tasks.errors import UserError

# Registry kind -> entry-point group (`gansweep list <plural>` and the sweep file's fields use these kinds).
GROUPS = {"loss": "gansweep.losses", "model": "gansweep.models", "optimizer": "gansweep.optimizers",
          "program": "gansweep.programs", "metric": "gansweep.metrics",
          "feature extractor": "gansweep.feature_extractors"}


class PluginError(UserError, ValueError):
    """A plugin entry that cannot be used: it fails to import, is not a spec, is invalid or provided twice."""


@dataclass(frozen=True)
class Provider:
    """One entry point of one installed distribution."""

    name: str  # the registered name
    group: str
    value: str  # "module:attr"
    dist: str
    version: str

    @property
    def label(self) -> str:
        """'my-gan-lib 0.2 (entry point my_gan_lib.specs:SOFT_HINGE)': how errors and listings name it."""
        return f"{self.dist} {self.version} (entry point {self.value})"

    def load(self) -> Any:
        try:
            return metadata.EntryPoint(self.name, self.value, self.group).load()
        except Exception as e:  # noqa: BLE001 - whatever the plugin's import raises is reported, one line
            raise PluginError(f"plugin {self.name!r} of {self.label} failed to import: "
                              f"{type(e).__name__}: {e}") from None

    @property
    def package_dir(self) -> Path | None:
        """The folder (or single module file) of the entry point's top-level package, found without importing it."""
        spec = importlib.util.find_spec(self.value.partition(":")[0].split(".")[0])
        if spec is None:
            return None
        if spec.submodule_search_locations:
            return Path(next(iter(spec.submodule_search_locations)))
        return Path(spec.origin) if spec.origin else None

    def code_hash(self) -> str:
        return code_hash(self.package_dir)


def code_hash(root: Path | None) -> str:
    """sha256[:16] over the .py files under root (its path and bytes, in sorted path order); '' for none."""
    if root is None or not root.exists():
        return ""
    files = sorted(root.rglob("*.py")) if root.is_dir() else [root]
    h = hashlib.sha256()
    for f in files:
        if "__pycache__" in f.parts:
            continue
        h.update(f.relative_to(root if root.is_dir() else root.parent).as_posix().encode() + b"\0")
        h.update(f.read_bytes() + b"\0")
    return h.hexdigest()[:16]


@functools.lru_cache(maxsize=None)
def providers(group: str) -> dict[str, tuple[Provider, ...]]:
    """Every entry point of the group by name (a name two distributions provide has two), none imported."""
    out: dict[str, list[Provider]] = {}
    for ep in metadata.entry_points(group=group):
        dist = ep.dist
        out.setdefault(ep.name, []).append(Provider(ep.name, group, ep.value, dist.name if dist else "?",
                                                    dist.version if dist else "?"))
    return {n: tuple(ps) for n, ps in sorted(out.items())}


def rescan() -> None:
    """Forget what was discovered (after installing a plugin into a running process)."""
    providers.cache_clear()
