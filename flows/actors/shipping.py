"""Plugin code on a cluster's workers (docs/plugins.md, "Where the code runs").

With `--ray-address` the run ships its own code and the package directory of every plugin its trials use
through Ray's runtime environment (`py_modules`: the folder as it is on the driver, editable installs
included; no wheel, which would reinstall torch), plus the sweep's `pip:` requirements. Ray uploads each
folder once per content and unpacks it on every node. Before any trial starts, check_nodes imports every
plugin module on every alive node, so a node that cannot is refused in one line, not found by a trial.
"""
from __future__ import annotations

import heapq
from pathlib import Path
from typing import Any

import ray

from gan_tasks.config import TrialConfig
from gan_tasks.errors import BadInput
from gan_tasks.methods.registry import Ref

# Not shipped (nor counted against limits.shipped_bytes): byte code each node writes for itself.
EXCLUDES = ["__pycache__", "*.pyc"]


class ShippingRefused(BadInput):
    """Plugin code that cannot go to the workers: over the size limit, or a module a node cannot import."""


def plugin_dirs(trials: list[TrialConfig]) -> list[Path]:
    """The package folder (or single module file) of every plugin the trials use, each once."""
    seen: dict[str, Path] = {}
    for p in {p for t in trials for p in t.plugins}:
        where = p.provider().package_dir
        if where is None:
            raise ShippingRefused(f"plugin {p.kind} {p.name!r} of {p.dist} {p.version}: its package "
                                  f"{p.entry_point.split(':')[0]!r} is not found on this machine, nothing to ship")
        seen[str(where)] = where
    return [seen[k] for k in sorted(seen)]


def _files(root: Path) -> list[Path]:
    files = [f for f in root.rglob("*") if f.is_file()] if root.is_dir() else [root]
    return [f for f in files if "__pycache__" not in f.parts and f.suffix != ".pyc"]


def check_size(dirs: list[Path], limit: int) -> int:
    """The bytes to ship; over `limit` a ShippingRefused naming the three largest files."""
    sizes = [(f.stat().st_size, f) for d in dirs for f in _files(d)]
    total = sum(s for s, _ in sizes)
    if total > limit:
        top = ", ".join(f"{f} ({s / 2**20:.1f} MiB)" for s, f in heapq.nlargest(3, sizes))
        raise ShippingRefused(f"plugin code to ship is {total / 2**20:.1f} MiB, over the limit of "
                              f"{limit / 2**20:.1f} MiB (limits.shipped_bytes); largest files: {top}; move data "
                              "out of the package (into storage) or raise limits.shipped_bytes")
    return total


def runtime_env(trials: list[TrialConfig], pip: tuple[str, ...] = (), limit: int = 50 << 20,
                ship_plugins: bool = True) -> dict[str, Any]:
    """The run's Ray runtime environment on a cluster: this checkout's gan_tasks and flows, each used
    plugin's package folder (unless ship_plugins is off: then the nodes must have them installed) and pip."""
    import flows
    import gan_tasks

    dirs = plugin_dirs(trials) if ship_plugins else []
    check_size(dirs, limit)
    env: dict[str, Any] = {"py_modules": [gan_tasks, flows, *map(str, dirs)], "excludes": EXCLUDES}
    if pip:
        env["pip"] = list(pip)
    return env


def code_key(trials: list[TrialConfig]) -> str:
    """12 hex digits naming the plugin code the trials use ('' for built-ins only): warm actors are kept
    per code (flows/actors/warm.py), so changed code never runs in an actor that imported the old one."""
    import hashlib

    used = sorted({f"{p.dist}={p.version}={p.code_hash}" for t in trials for p in t.plugins})
    return hashlib.sha256("\n".join(used).encode()).hexdigest()[:12] if used else ""


def plugin_modules(trials: list[TrialConfig]) -> list[str]:
    """Every module a trial's plugins name: their spec modules and the code their specs reference."""
    from gan_tasks.config.plugins import REGISTRIES

    mods = set()
    for p in {p for t in trials for p in t.plugins}:
        mods.add(p.entry_point.split(":")[0])
        spec = REGISTRIES[p.kind].get(p.name)
        values = list(vars(spec).values()) if hasattr(spec, "__dict__") else []
        mods |= {v.target.split(":")[0] for v in values if isinstance(v, Ref)}
    return sorted(mods)


@ray.remote(num_cpus=0, max_retries=0)
def _imports(modules: list[str]) -> tuple[str, str] | None:
    """On one node: the first module that does not import, with its error; None when all do."""
    import importlib

    for m in modules:
        try:
            importlib.import_module(m)
        except Exception as e:  # noqa: BLE001 - any failure to import is the node's answer
            return m, f"{type(e).__name__}: {e}"
    return None


def check_nodes(trials: list[TrialConfig], timeout: float = 600.0) -> int:
    """Import every plugin module on every alive node (a task pinned to each); the first failure is a
    ShippingRefused naming the module, the node and the error. The number of nodes checked."""
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    modules = plugin_modules(trials)
    if not modules:
        return 0
    nodes = [(n["NodeID"], n.get("NodeManagerAddress", "?")) for n in ray.nodes() if n["Alive"]]
    refs = [_imports.options(scheduling_strategy=NodeAffinitySchedulingStrategy(nid, soft=False)).remote(modules)
            for nid, _ in nodes]
    for (nid, ip), ref in zip(nodes, refs):
        try:
            failed = ray.get(ref, timeout=timeout)
        except ray.exceptions.GetTimeoutError:
            raise ShippingRefused(f"plugin modules did not import on node {nid} ({ip}) within {timeout:.0f} s "
                                  "(its runtime environment, pip: included, still installing?)") from None
        except ray.exceptions.RayError as e:  # the runtime environment could not be set up there
            first = next((line for line in str(e).splitlines() if line.strip()), type(e).__name__)
            raise ShippingRefused(f"plugin code could not be set up on node {nid} ({ip}): {first}") from None
        if failed:
            raise ShippingRefused(f"plugin module {failed[0]!r} does not import on node {nid} ({ip}): {failed[1]}")
    return len(nodes)
