"""The layout of gan_tasks/: every module imports, and the import graph has no circle, between modules
and between the rooms (subpackages), which stack in one order: methods < data < config < training <
evaluation. Every import counts, also those inside functions and under TYPE_CHECKING. One module sits
outside the rooms: gan_tasks/plugin_api.py, the public API plugins build on, which imports the methods
room only and which no module of gan_tasks imports (the rooms import methods directly)."""
from __future__ import annotations

import ast
import importlib
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ROOMS = ("methods", "data", "config", "training", "evaluation")  # lowest first
API = "gan_tasks.plugin_api"  # the public plugin API, on top of methods, outside the rooms


def _modules() -> dict[str, Path]:
    out = {}
    for path in sorted((ROOT / "gan_tasks").rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


def _graph() -> dict[str, set[str]]:
    mods = _modules()
    graph: dict[str, set[str]] = {m: set() for m in mods}
    for mod, path in mods.items():
        package = mod if path.name == "__init__.py" else mod.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:  # relative: from . import x
                    base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
                # `from pkg import submodule` depends on the submodule, `from mod import name` on mod
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in mods else base for a in node.names]
            else:
                continue
            graph[mod] |= {t for t in targets if t in mods and t != mod}
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(n: str) -> list[str] | None:
        state[n] = 1
        stack.append(n)
        for m in sorted(graph[n]):
            if state.get(m) == 1:
                return stack[stack.index(m):] + [m]
            if m not in state and (found := visit(m)):
                return found
        stack.pop()
        state[n] = 2
        return None

    for n in sorted(graph):
        if n not in state and (found := visit(n)):
            return found
    return None


def _room(mod: str) -> str | None:
    parts = mod.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in ROOMS else None


def test_every_module_imports():
    for mod in _modules():
        importlib.import_module(mod)


def test_module_import_graph_has_no_circle():
    assert _cycle(_graph()) is None, f"import circle: {' -> '.join(_cycle(_graph()))}"


def test_rooms_stack_in_one_order():
    bad = [f"{m} -> {t}" for m, ts in _graph().items() for t in ts
           if _room(m) and _room(t) and ROOMS.index(_room(t)) > ROOMS.index(_room(m))]
    assert not bad, "a lower room imports a higher one:\n" + "\n".join(bad)
    assert {_room(m) for m in _modules()} <= {None, *ROOMS}
    assert set(_modules()) - {"gan_tasks", API} == {m for m in _modules() if _room(m)}, "every module lives in a room"


def test_plugin_api_sits_on_methods_and_nothing_imports_it():
    graph = _graph()
    assert API in graph
    assert {_room(t) for t in graph[API]} == {"methods"}, graph[API]
    assert not [m for m, ts in graph.items() if API in ts], "gan_tasks modules import the methods room, not the API"


def test_the_checker_finds_a_circle():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


@pytest.mark.parametrize("mod", ["gan_tasks.config", "gan_tasks.methods.catalog", "gan_tasks.data.datasets", API])
def test_validation_rooms_stay_torch_free(mod):
    code = f"import sys, {mod}; assert 'torch' not in sys.modules, sorted(m for m in sys.modules if 'torch' in m)"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)
