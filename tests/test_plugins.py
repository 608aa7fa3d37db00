"""Plugins through entry points (gan_tasks/plugin_api.py, gan_tasks/methods/plugins.py): the example
distribution installed into a throwaway target, broken distributions made as bare dist-info folders,
and `gansweep list` / `validate` / `run` as a user runs them, with that folder on PYTHONPATH."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from gan_tasks.methods.catalog import Loss
from gan_tasks.methods.plugins import PluginError, code_hash
from gan_tasks.methods.registry import Ref, Registry
from gan_tasks.plugin_api import Num

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "gansweep-example"
SWEEP = EXAMPLE / "sweep.yaml"
QUICKSTART = ROOT / "configs" / "quickstart.yaml"
GANSWEEP = [sys.executable, "-c", "from flows.cli import app; app()"]


def gansweep(*args: str, paths: tuple[Path, ...] = (), cwd: Path = ROOT, timeout: float = 120) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), *map(str, paths)]), "COLUMNS": "2000"}  # rows unwrapped
    return subprocess.run([*GANSWEEP, *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=timeout)


@pytest.fixture(scope="module")
def example(example_site) -> Path:
    """examples/gansweep-example installed by pip into a throwaway target folder (tests/conftest.py)."""
    return example_site


def _dist(root: Path, name: str, version: str, entry_points: str, modules: dict[str, str]) -> Path:
    """A distribution as pip leaves it: <name>-<version>.dist-info with METADATA and entry_points.txt."""
    info = root / f"{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    (info / "entry_points.txt").write_text(entry_points)
    for mod, code in modules.items():
        (root / f"{mod}.py").write_text(code)
    return root


_SPEC = "from gan_tasks.plugin_api import Loss, Num, Ref\n"
_GOOD = "Loss(Ref('x:d'), Ref('x:g'), {'d_steps': 1})"


@pytest.fixture(scope="module")
def broken(tmp_path_factory) -> Path:
    """Four bad loss entries in one folder: each must break only the sweeps that use it."""
    root = tmp_path_factory.mktemp("broken")
    _dist(root, "broken-lib", "1.0", "[gansweep.losses]\nbad-import = broken_mod:SPEC\n",
          {"broken_mod": "raise ImportError('needs the missing package foo')\n"})
    _dist(root, "odd-lib", "2.0", "[gansweep.losses]\nnot-a-spec = odd_mod:spec\nbad-default = odd_mod:BAD\n",
          {"odd_mod": _SPEC + "def spec(): pass\n"
                      "BAD = Loss(Ref('x:d'), Ref('x:g'), {'d_steps': 1, 'tau': 5.0}, params={'tau': Num(float, 0, 1)})\n"})
    _dist(root, "twin-a", "1.0", "[gansweep.losses]\ntwin = twin_a:SPEC\n", {"twin_a": _SPEC + f"SPEC = {_GOOD}\n"})
    _dist(root, "twin-b", "3.1", "[gansweep.losses]\ntwin = twin_b:SPEC\n", {"twin_b": _SPEC + f"SPEC = {_GOOD}\n"})
    return root


def _error(r: subprocess.CompletedProcess) -> str:
    """The one line naming the field, from a refused config (exit 2, no traceback)."""
    assert r.returncode == 2, r.stdout + r.stderr
    assert "Traceback" not in r.stdout + r.stderr
    lines = [x.strip() for x in r.stdout.splitlines() if x.startswith("  ")]
    assert len(lines) == 1, r.stdout
    return lines[0]


# --- discovery and listing -------------------------------------------------------------------------
def test_list_shows_the_example_entries_with_distribution_and_version(example):
    for what, name in (("losses", "rpgan-r1"), ("models", "deep-mlp"), ("metrics", "energy-distance"),
                       ("programs", "lookahead-gan")):
        r = gansweep("list", what, paths=(example,))
        assert r.returncode == 0, r.stderr
        row = next(line for line in r.stdout.splitlines() if f" {name} " in line)
        assert "│ plugin gansweep-example 0.1.0: " in row, r.stdout
    r = gansweep("list", "losses", paths=(example,))
    assert "gamma a number in [0, 1000] (default 0.1)" in r.stdout  # the built-ins' parameter line


def test_list_marks_broken_entries_and_still_lists_the_rest(broken):
    r = gansweep("list", "losses", paths=(broken,))
    assert r.returncode == 0, r.stderr
    rows = {m.group(1): m.group(2) for m in re.finditer(r"│ (\S+)\s+│ (BROKEN[^│]*)", r.stdout)}
    assert "ImportError: needs the missing package foo" in rows["bad-import"]
    assert "broken-lib 1.0" in rows["bad-import"]
    assert "is not a loss spec" in rows["not-a-spec"]
    assert "invalid spec" in rows["bad-default"]
    assert "provided twice" in rows["twin"]
    assert " non-saturating " in r.stdout and " wgan-gp " in r.stdout


def test_a_broken_plugin_breaks_nothing_that_does_not_use_it(broken):
    r = gansweep("validate", str(QUICKSTART), paths=(broken,))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "plugin " not in r.stdout  # built-ins only: no plugin lines


# --- validate --------------------------------------------------------------------------------------
def test_validate_prints_every_used_plugin_with_its_code_hash(example):
    r = gansweep("validate", str(SWEEP), paths=(example,))
    assert r.returncode == 0, r.stdout + r.stderr
    h = code_hash(example / "gansweep_example")
    assert re.fullmatch(r"[0-9a-f]{16}", h)
    for kind, name in (("loss", "rpgan-r1"), ("model", "deep-mlp"), ("metric", "energy-distance")):
        assert f"plugin {kind} {name}: gansweep-example 0.1.0, code sha256 {h}" in r.stdout, r.stdout
    assert "6 trials (2 losses x 1 optimizer x 3 seeds)" in r.stdout


def test_the_code_hash_follows_the_code(tmp_path, example):
    copy = shutil.copytree(example / "gansweep_example", tmp_path / "pkg", ignore=shutil.ignore_patterns("__pycache__"))
    before = code_hash(copy)
    assert code_hash(copy) == before  # deterministic
    (copy / "losses.py").write_text((copy / "losses.py").read_text() + "# one line more\n")
    assert code_hash(copy) != before


@pytest.mark.parametrize("name, expected", [
    ("bad-import", "grid.loss.0: plugin 'bad-import' of broken-lib 1.0 (entry point broken_mod:SPEC) failed to "
                   "import: ImportError: needs the missing package foo"),
    ("not-a-spec", "grid.loss.0: plugin 'not-a-spec' of odd-lib 2.0 (entry point odd_mod:spec) is not a loss spec: "
                   "expected gan_tasks.plugin_api.Loss, got function"),
    ("bad-default", "grid.loss.0: plugin 'bad-default' of odd-lib 2.0 (entry point odd_mod:BAD) is an invalid spec: "
                    "default tau: 5.0 is out of range: expected a number in [0, 1]"),
    ("twin", "grid.loss.0: loss 'twin' is provided twice: by twin-a 1.0 (entry point twin_a:SPEC) and by twin-b 3.1 "
             "(entry point twin_b:SPEC)"),
])
def test_a_bad_plugin_is_one_line_naming_the_field(broken, name, expected):
    assert _error(gansweep("validate", str(QUICKSTART), "--set", f"grid.loss=[{name}]", paths=(broken,))) == expected


def test_a_plugin_with_a_built_in_name_is_refused_naming_both(tmp_path):
    _dist(tmp_path, "clash-lib", "0.3", "[gansweep.losses]\nhinge = clash:SPEC\n", {"clash": _SPEC + f"SPEC = {_GOOD}\n"})
    line = _error(gansweep("validate", str(QUICKSTART), "--set", "grid.loss=[hinge]", paths=(tmp_path,)))
    assert line == ("grid.loss.0: loss 'hinge' is provided twice: by gansweep (built-in) and by clash-lib 0.3 "
                    "(entry point clash:SPEC)")


def test_an_unknown_name_lists_built_in_and_plugin_names(example):
    line = _error(gansweep("validate", str(SWEEP), "--set", "grid.loss=[nope]", paths=(example,)))
    assert line.startswith("grid.loss.0: unknown loss 'nope'; valid: began, dragan, hinge, ")
    assert line.endswith("; plugins: rpgan-r1 (gansweep-example 0.1.0)")


def test_a_plugin_parameter_is_validated_as_a_built_in_one(example):
    plugin = _error(gansweep("validate", str(SWEEP), "--set", "grid.loss.1.params.gamma=5000", paths=(example,)))
    builtin = _error(gansweep("validate", str(SWEEP), "--set", "grid.loss=[wgan-gp]",
                              "--set", "grid.loss.0={name: wgan-gp, params: {gp_lambda: 50000}}", paths=(example,)))
    assert plugin == "grid.loss.1.params.gamma: 5000 is out of range: expected a number in [0, 1000] (loss 'rpgan-r1')"
    assert builtin == ("grid.loss.0.params.gp_lambda: 50000 is out of range: expected a number in [0, 10000] "
                       "(loss 'wgan-gp')")
    assert _error(gansweep("validate", str(SWEEP), "--set", "model.params.depth=0", paths=(example,))) == \
        "model.params.depth: 0 is out of range: expected an integer in [1, 8] (model 'deep-mlp')"
    assert _error(gansweep("validate", str(SWEEP), "--set", "evaluation.metrics.0={name: energy-distance, params: "
                                                            "{max_pts: 5}}", paths=(example,))) == \
        "evaluation.metrics.0: metric 'energy-distance' has no parameter 'max_pts'; valid: max_points"


def test_an_unmet_pin_is_refused(example):
    line = _error(gansweep("validate", str(SWEEP), "--set", "plugins=['gansweep-example>=0.2']", paths=(example,)))
    assert line == "plugins.0: 'gansweep-example>=0.2' is not met: gansweep-example 0.1.0 is installed"
    r = gansweep("validate", str(SWEEP))  # not installed: the pin says so, beside the names it would provide
    assert r.returncode == 2 and "Traceback" not in r.stdout + r.stderr
    assert "  plugins.0: 'gansweep-example>=0.1': distribution 'gansweep-example' is not installed" in r.stdout


# --- the registry itself (in-process, a registry of its own) -----------------------------------------
def test_the_registry_checks_every_spec_built_in_or_not():
    reg = Registry("loss", Loss, plugins=True)
    reg.add("fine", Loss(Ref("x:d"), Ref("x:g"), {"d_steps": 1, "tau": 0.5}, params={"tau": Num(float, 0, 1)}))
    assert reg.get("fine").schema["tau"] == Num(float, 0, 1)
    with pytest.raises(PluginError, match="invalid spec: default d_steps: 0 is out of range"):
        reg.add("zero", Loss(Ref("x:d"), Ref("x:g"), {"d_steps": 0}))
    with pytest.raises(PluginError, match="default tau=1 has no type"):
        reg.add("untyped", Loss(Ref("x:d"), Ref("x:g"), {"tau": 1}))
    with pytest.raises(PluginError, match="parameter 'tau' has no default"):
        reg.add("undefaulted", Loss(Ref("x:d"), Ref("x:g"), {}, params={"tau": Num(float, 0, 1)}))
    with pytest.raises(PluginError, match="is not a loss spec"):
        reg.add("function", len)


# --- the real flow ----------------------------------------------------------------------------------
@pytest.mark.slow
def test_the_example_sweep_runs_and_ranks_the_plugin_loss_beside_the_built_in(tmp_path, example):
    r = gansweep("run", str(SWEEP), "--storage", str(tmp_path / "results"), "--sweep-id", "example",
                 "--set", "train.steps=60", "--set", "train.checkpoint_every=30", "--set", "train.log_every=30",
                 paths=(example,), cwd=tmp_path, timeout=900)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    ranks = pq.read_table(tmp_path / "results" / "sweeps" / "example" / "rankings" / "rankings.parquet").to_pandas()
    for metric in ("energy_distance", "modes_covered"):
        cells = ranks[ranks.metric == metric]
        assert set(cells.loss) == {"non-saturating", "rpgan-r1"}, ranks
        assert (cells.seeds == 3).all()
    assert not ranks[ranks.metric == "energy_distance"].higher_is_better.any()
