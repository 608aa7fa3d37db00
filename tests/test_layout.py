"""The layout of gan_tasks/, flows/ and bench/: every module imports, and the import graph has no circle,
between modules and between the rooms (subpackages), which stack in one order: in gan_tasks, methods <
data < config < training < evaluation; in flows, guard < actors < server < run < cli; and gan_tasks <
flows < bench (nothing imports upwards; the benchmarks leave the shipped runtime: only the thin `gansweep
bench` entry imports them, when it runs). Every import counts, also those inside functions and under
TYPE_CHECKING. Two modules of gan_tasks sit outside its rooms: gan_tasks/errors.py, the UserError family
every room may raise, which imports nothing of ours; and gan_tasks/plugin_api.py, the public API plugins
build on, which imports the methods room only and which no module of gan_tasks imports."""
from __future__ import annotations

import ast
import importlib
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ROOMS = ("methods", "data", "config", "training", "evaluation")  # lowest first
FLOW_ROOMS = ("guard", "actors", "server", "run", "cli")  # lowest first
PACKAGES = ("gan_tasks", "flows", "bench")  # lowest first
API = "gan_tasks.plugin_api"  # the public plugin API, on top of methods, outside the rooms
ERRORS = "gan_tasks.errors"  # the UserError family, below every room
BENCH_ENTRY = "flows.cli.bench"  # `gansweep bench`: imports the bench package when it runs


def _modules(packages: tuple[str, ...] = ("gan_tasks",)) -> dict[str, Path]:
    out = {}
    for path in sorted(p for pkg in packages for p in (ROOT / pkg).rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


def _graph(packages: tuple[str, ...] = ("gan_tasks",)) -> dict[str, set[str]]:
    mods = _modules(packages)
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
    for mod in _modules(("gan_tasks", "flows")):
        if not mod.endswith("__main__"):
            importlib.import_module(mod)


@pytest.mark.parametrize("packages", [("gan_tasks",), PACKAGES])
def test_module_import_graph_has_no_circle(packages):
    graph = _graph(packages)
    assert _cycle(graph) is None, f"import circle: {' -> '.join(_cycle(graph))}"


def test_rooms_stack_in_one_order():
    bad = [f"{m} -> {t}" for m, ts in _graph().items() for t in ts
           if _room(m) and _room(t) and ROOMS.index(_room(t)) > ROOMS.index(_room(m))]
    assert not bad, "a lower room imports a higher one:\n" + "\n".join(bad)
    assert {_room(m) for m in _modules()} <= {None, *ROOMS}
    assert set(_modules()) - {"gan_tasks", API, ERRORS} == {m for m in _modules() if _room(m)}, \
        "every module lives in a room"


def test_errors_module_imports_nothing_of_ours():
    assert not _graph()[ERRORS]


def _flow_room(mod: str) -> str | None:
    parts = mod.split(".")
    return parts[1] if parts[0] == "flows" and len(parts) > 1 and parts[1] in FLOW_ROOMS else None


def test_flows_rooms_stack_in_one_order():
    graph = _graph(PACKAGES)
    flows = [m for m in graph if m.split(".")[0] == "flows"]
    assert set(flows) - {"flows"} == {m for m in flows if _flow_room(m)}, "every module of flows lives in a room"
    bad = [f"{m} -> {t}" for m in flows for t in graph[m]
           if _flow_room(m) and _flow_room(t) and FLOW_ROOMS.index(_flow_room(t)) > FLOW_ROOMS.index(_flow_room(m))]
    assert not bad, "a lower room of flows imports a higher one:\n" + "\n".join(bad)


def test_packages_stack_gan_tasks_flows_bench():
    graph = _graph(PACKAGES)
    level = {m: PACKAGES.index(m.split(".")[0]) for m in graph}
    bad = [f"{m} -> {t}" for m, ts in graph.items() for t in ts
           if level[t] > level[m] and (m, t.split(".")[0]) != (BENCH_ENTRY, "bench")]
    assert not bad, "a lower package imports a higher one:\n" + "\n".join(bad)
    assert {t for t in graph[BENCH_ENTRY] if t.startswith("bench")} == {"bench.run"}


def test_the_runtime_does_not_import_torch_at_start():
    """torch is imported where a trial or an evaluation needs it (in the actors), not by the command line,
    the flow or its start-up: a run's driver starts seconds sooner."""
    code = ("import sys, flows.cli, flows.run.launch, flows.run.flow, flows.run.nightly; "
            "assert 'torch' not in sys.modules, sorted(m for m in sys.modules if 'torch' in m)")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


def test_plugin_api_sits_on_methods_and_nothing_imports_it():
    graph = _graph()
    assert API in graph
    assert {_room(t) for t in graph[API] - {ERRORS}} == {"methods"}, graph[API]
    assert not [m for m, ts in graph.items() if API in ts], "gan_tasks modules import the methods room, not the API"


def test_the_checker_finds_a_circle():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


@pytest.mark.parametrize("mod", ["gan_tasks.config", "gan_tasks.methods.catalog", "gan_tasks.data.datasets", API])
def test_validation_rooms_stay_torch_free(mod):
    code = f"import sys, {mod}; assert 'torch' not in sys.modules, sorted(m for m in sys.modules if 'torch' in m)"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


def test_ray_patches_are_for_the_pinned_ray():
    """flows/actors/ray_patches.py reaches into Ray's private modules: written for one Ray, the one pinned."""
    import ray

    from flows.actors.ray_patches import RAY_VERSION

    assert f'"ray[default]=={RAY_VERSION}"' in (ROOT / "pyproject.toml").read_text()
    assert ray.__version__ == RAY_VERSION
