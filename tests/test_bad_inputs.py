"""A corpus of bad sweep inputs (issue 16): each is refused by `gansweep validate` with exit 2, the
field (or the file's defect) named, no traceback; a sample goes through `gansweep run` in a
subprocess to show that nothing reaches Ray, Prefect or storage. Fast: validation imports no torch."""
from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
import yaml
from typer.testing import CliRunner

from tests.conftest import tiny_config

G = {"loss": ["minimax"], "optimizer": ["adam"], "seed": [0]}
MNIST = {"dataset": "mnist", "model": "dcgan-28"}


def loss(name, **params):
    return {"grid": {**G, "loss": [{"name": name, "params": params}]}}


def opt(name, **kw):
    return {"grid": {**G, "optimizer": [{"name": name, **kw}]}}


def model(name, **params):
    return {"model": {"name": name, "params": params}}


def ring(**params):
    return {"dataset": {"name": "ring-8", "params": params}}


NAN, INF = float("nan"), float("inf")


def published(figure=None, **kw):
    fig = {"mean": 7.0, "se": 0.1, **(figure or {})}
    return {"published": {"source": "x", "table": "t", "runs": 10, "steps": 100, **kw,
                          "rows": [{"name": "a", "match": {"tricks.pac": 1}, "values": {"modes_covered": fig}}]}}


# (id, config overrides over tests.conftest.tiny_config, what the error must name)
OVER = [
    # wrong types, and a bool where a number belongs
    ("hidden a string", model("mlp", hidden="big"), "model.params.hidden"),
    ("hidden a float", model("mlp", hidden=1.5), "model.params.hidden"),
    ("hidden a bool", model("mlp", hidden=True), "model.params.hidden"),
    ("activation unknown", model("mlp", activation="gelu"), "model.params.activation"),
    ("activation a number", model("mlp", activation=3), "model.params.activation"),
    ("steps a bool", {"train": {"steps": True}}, "train.steps"),
    ("batch_size a bool", {"train": {"batch_size": False}}, "train.batch_size"),
    ("z_dim a string", {"train": {"z_dim": "16x"}}, "train.z_dim"),
    ("seed a bool", {"grid": {**G, "seed": [True]}}, "grid.seed.0"),
    ("lr_g a bool", opt("adam", lr_g=True), "grid.optimizer.0.lr_g"),
    ("lsgan a a string", loss("lsgan", a="x"), "grid.loss.0.params.a"),
    ("d_steps a float", loss("minimax", d_steps=2.5), "grid.loss.0.params.d_steps"),
    ("loss params a list", {"grid": {**G, "loss": [{"name": "minimax", "params": [1, 2]}]}}, "grid.loss.0.params"),
    ("std a string", ring(std="wide"), "dataset.params.std"),
    ("n_modes a bool", ring(n_modes=True), "dataset.params.n_modes"),
    ("label_smoothing a bool", {"tricks": {"label_smoothing": True}}, "tricks.label_smoothing"),
    ("cpus a bool", {"resources": {"cpus_per_trial": True}}, "resources.cpus_per_trial"),
    ("eval samples a bool", {"evaluation": {"n_samples": True}}, "evaluation.n_samples"),
    ("pack_seeds a bool", {"pack_seeds": True}, "pack_seeds"),
    ("name a number", {"name": 123}, "name"),
    ("betas a string", opt("adam", params={"betas": "0.5"}), "grid.optimizer.0.params.betas"),
    ("betas one value", opt("adam", params={"betas": [0.5]}), "grid.optimizer.0.params.betas"),
    ("betas with a bool", opt("adam", params={"betas": [0.5, True]}), "grid.optimizer.0.params.betas"),
    # NaN and infinity
    ("gp_lambda nan", loss("wgan-gp", gp_lambda=NAN), "grid.loss.0.params.gp_lambda"),
    ("gp_lambda inf", loss("wgan-gp", gp_lambda=INF), "grid.loss.0.params.gp_lambda"),
    ("std nan", ring(std=NAN), "dataset.params.std"),
    ("lr_g nan", opt("adam", lr_g=NAN), "grid.optimizer.0.lr_g"),
    ("lr_d -inf", opt("adam", lr_d=-INF), "grid.optimizer.0.lr_d"),
    ("std_threshold inf", {"evaluation": {"std_threshold": INF}}, "evaluation.std_threshold"),
    ("g_ema nan", {"train": {"g_ema": NAN}}, "train.g_ema"),
    ("instance_noise inf", {"tricks": {"instance_noise": INF}}, "tricks.instance_noise"),
    ("lsgan a -inf", loss("lsgan", a=-INF), "grid.loss.0.params.a"),
    ("gpus nan", {"resources": {"gpus_per_trial": NAN}}, "resources.gpus_per_trial"),
    ("eps nan", opt("optimistic-adam", params={"eps": NAN}), "grid.optimizer.0.params.eps"),
    # zero or negative where a positive value is needed
    ("trick d_steps -3", {"tricks": {"d_steps": -3}}, "tricks.d_steps"),
    ("loss d_steps 0", loss("minimax", d_steps=0), "grid.loss.0.params.d_steps"),
    ("std -1", ring(std=-1.0), "dataset.params.std"),
    ("ring n_samples 0", ring(n_samples=0), "dataset.params.n_samples"),
    ("hidden 0", model("mlp", hidden=0), "model.params.hidden"),
    ("hidden -5", model("mlp", hidden=-5), "model.params.hidden"),
    ("radius 0", ring(radius=0), "dataset.params.radius"),
    ("n_modes 0", ring(n_modes=0), "dataset.params.n_modes"),
    ("clip negative", loss("wgan", clip=-0.01), "grid.loss.0.params.clip"),
    ("gp_lambda negative", loss("wgan-gp", gp_lambda=-1), "grid.loss.0.params.gp_lambda"),
    ("lr_g 0", opt("adam", lr_g=0), "grid.optimizer.0.lr_g"),
    ("log_every 0", {"train": {"log_every": 0}}, "train.log_every"),
    ("eval_every 0", {"evaluation": {"eval_every": 0}}, "evaluation.eval_every"),
    ("seed -1", {"grid": {**G, "seed": [-1]}}, "grid.seed.0"),
    ("data seed -1", ring(seed=-1), "dataset.params.seed"),
    # out of range
    ("betas above 1", opt("adam", params={"betas": [1.5, 2.0]}), "grid.optimizer.0.params.betas"),
    ("momentum 1", opt("sgd", params={"momentum": 1.0}), "grid.optimizer.0.params.momentum"),
    ("dropout 1", {**MNIST, **model("dcgan-28", dropout=1.0)}, "model.params.dropout"),
    ("began gamma 2", {"model": "mlp-ae", **loss("began", gamma=2)}, "grid.loss.0.params.gamma"),
    ("label_flip 0.5", {"tricks": {"label_flip": 0.5}}, "tricks.label_flip"),
    ("std_threshold 1e9", {"evaluation": {"std_threshold": 1e9}}, "evaluation.std_threshold"),
    ("g_ema 1", {"train": {"g_ema": 1.0}}, "train.g_ema"),
    ("max_score 1000", loss("max-likelihood", max_score=1000), "grid.loss.0.params.max_score"),
    ("lr_g 100", opt("adam", lr_g=100), "grid.optimizer.0.lr_g"),
    ("keep 1000 checkpoints", {"train": {"keep_checkpoints": 1000}}, "train.keep_checkpoints"),
    ("100 gpus", {"resources": {"gpus_per_trial": 100}}, "resources.gpus_per_trial"),
    # absurd sizes
    ("z_dim 1e12", {"train": {"z_dim": 10**12}}, "train.z_dim"),
    ("batch 1e10", {"train": {"batch_size": 10**10}}, "train.batch_size"),
    ("eval samples 1e11", {"evaluation": {"n_samples": 10**11}}, "evaluation.n_samples"),
    ("steps 1e20", {"train": {"steps": 10**20}}, "train.steps"),
    ("seed 2**70", {"grid": {**G, "seed": [2**70]}}, "grid.seed.0"),
    ("10,001 trials", {"grid": {**G, "seed": list(range(10_001))}}, "grid"),
    ("name 300 chars", {"name": "n" * 300}, "name"),
    ("name with newline", {"name": "fz\n"}, "name"),
    ("ring n_samples 1e9", ring(n_samples=10**9), "dataset.params.n_samples"),
    ("hidden 1e6", model("mlp", hidden=10**6), "model.params.hidden"),
    ("unrolled 1e6", {"tricks": {"unrolled_steps": 10**6}}, "tricks.unrolled_steps"),
    ("mbd kernels 1e6", {"tricks": {"minibatch_discrimination": 10**6}}, "tricks.minibatch_discrimination"),
    ("checkpoint_every 1e12", {"train": {"checkpoint_every": 10**12}}, "train.checkpoint_every"),
    ("pack 1000 seeds", {"pack_seeds": 1000}, "pack_seeds"),
    ("max_parallel 1e9", {"resources": {"max_parallel": 10**9}}, "resources.max_parallel"),
    ("fidelity samples 1e9", {**MNIST, "evaluation": {"fidelity_samples": 10**9}}, "evaluation.fidelity_samples"),
    ("limit raised, still over", {"limits": {"steps": 100}, "train": {"steps": 200}}, "train.steps"),
    ("limit zero", {"limits": {"steps": 0}}, "limits.steps"),
    ("limit unknown", {"limits": {"stepz": 1}}, "limits.stepz"),
    # duplicate trials
    ("seed twice", {"grid": {**G, "seed": [0, 0]}}, "grid.seed"),
    ("loss twice", {"grid": {**G, "loss": ["minimax", "minimax"]}}, "grid.loss"),
    ("loss twice, once with its defaults", {"grid": {**G, "loss": ["minimax", {"name": "minimax",
                                                                              "params": {"d_steps": 1}}]}}, "grid.loss"),
    ("optimizer twice", {"grid": {**G, "optimizer": ["adam", {"name": "adam", "lr_g": 1e-3, "lr_d": 1e-3}]}},
     "grid.optimizer"),
    ("cell twice", {"grid": {"cells": [{"loss": "hinge", "optimizer": "adam"}] * 2, "loss": None, "optimizer": None,
                           "seed": [0]}}, "grid.cells"),
    ("trick setting twice", {"grid": {**G, "tricks": [{"d_steps": 2}, {"d_steps": 2}]}}, "grid.tricks"),
    # options that do not apply
    ("classifier_hash with ../", {**MNIST, "evaluation": {"classifier_hash": "../../etc/passwd"}},
     "evaluation.classifier_hash"),
    ("classifier_hash on 2-D data", {"evaluation": {"classifier_hash": "0123456789abcdef"}},
     "evaluation.classifier_hash"),
    ("weights path on 2-D data", {"evaluation": {"feature_extractor_weights_path": "/etc/passwd"}},
     "evaluation.feature_extractor_weights_path"),
    ("inception on 2-D data", {"evaluation": {"feature_extractor": "inception-v3",
                                              "feature_extractor_weights_path": "/etc/passwd"}},
     "evaluation.feature_extractor"),
    ("image metrics on 2-D data", {"evaluation": {"image_metrics": ["fid", "kid"]}}, "evaluation.image_metrics"),
    ("fid without kid", {**MNIST, "evaluation": {"image_metrics": ["fid"]}}, "evaluation.image_metrics"),
    ("fid below the feature dimension", {**MNIST, "evaluation": {"fidelity_samples": 100}}, "evaluation.fidelity_samples"),
    # the published: block's statistics (docs/statistics.md)
    ("published margin negative", published({"margin": -1.0}), "published.rows.0.values.modes_covered.margin"),
    ("published margin nan", published({"margin": NAN}), "published.rows.0.values.modes_covered.margin"),
    ("published margins negative", published(margins={"modes_covered": -0.5}), "published.margins.modes_covered"),
    ("published margins unknown metric", published(margins={"modes": 1.0}), "published.margins"),
    ("published relative_margin 0", published(relative_margin=0), "published.relative_margin"),
    ("published min_seeds 1", published(min_seeds=1), "published.min_seeds"),
    ("published min_budget_ratio 0", published(min_budget_ratio=0), "published.min_budget_ratio"),
    ("published min_budget_ratio 2", published(min_budget_ratio=2), "published.min_budget_ratio"),
    ("published mean below 0", published({"mean": -1.0}), "published.rows.0.values.modes_covered.mean"),
    ("published se negative", published({"se": -0.1}), "published.rows.0.values.modes_covered.se"),
    ("stacked samples on mnist", {**MNIST, "evaluation": {"stacked_samples": 1000}}, "evaluation.stacked_samples"),
    ("std_threshold on mnist", {**MNIST, "evaluation": {"std_threshold": 2.0}}, "evaluation.std_threshold"),
    # protocol options (issue 23): update and batch_unit
    ("update unknown", {"train": {"update": "sequential"}}, "train.update"),
    ("update a bool", {"train": {"update": True}}, "train.update"),
    ("batch_unit unknown", {"train": {"batch_unit": "images"}}, "train.batch_unit"),
    ("simultaneous with 5 critic steps", {"train": {"update": "simultaneous"}, **loss("wgan")}, "train.update"),
    ("simultaneous with d_steps 2", {"train": {"update": "simultaneous"}, "tricks": {"d_steps": 2}}, "train.update"),
    ("simultaneous with unrolling", {"train": {"update": "simultaneous"}, "tricks": {"unrolled_steps": 5}},
     "train.update"),
    ("batch of samples not divisible by pac", {"tricks": {"pac": 3}}, "train.batch_size"),
    ("batch of groups over the limit", {"tricks": {"pac": 4}, "train": {"batch_size": 20_000, "batch_unit": "groups"}},
     "train.batch_size"),
    # a trial's Ray custom resources (issue 28): a name of its own, a positive number
    ("custom resource named CPU", {"resources": {"custom": {"CPU": 1}}}, "resources.custom"),
    ("custom resource amount 0", {"resources": {"custom": {"gpu_node": 0}}}, "resources.custom"),
    ("custom resource a bool", {"resources": {"custom": {"gpu_node": True}}}, "resources.custom"),
    ("custom resources a list", {"resources": {"custom": ["gpu_node"]}}, "resources.custom"),
]

_OK = yaml.safe_dump(tiny_config())
# (id, file text or bytes, what the error must name)
FILES = [
    ("duplicate key", _OK.replace("steps: 60", "steps: 30\n  steps: 40"), "duplicate key 'steps'"),
    ("duplicate top key", _OK + "name: other\n", "duplicate key 'name'"),
    ("duplicate key in a flow mapping", _OK.replace("model: mlp", "model: {name: mlp, name: mlp-ae}"),
     "duplicate key 'name'"),
    ("alias bomb", _OK + "x: &a [1,1,1,1,1,1,1,1,1,1]\n" + "".join(
        f"x{i}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 10)}]\n" for i in range(6)), "alias"),
    ("not UTF-8", _OK.encode().replace(b"tiny", b"t\xffny"), "not UTF-8"),
    ("not YAML", "name: [tiny\n", "not valid YAML"),
    ("a list, not a mapping", "- tiny\n", "top level must be a mapping"),
    ("empty file", "", "top level must be a mapping"),
    ("a list as a mapping key", "? [1, 2]\n: 3\n", "mapping key"),
    ("10 MB name", "name: " + "n" * 10_000_000 + "\n", "MB"),
]
# (id, --set overrides on a valid file, what the error must name)
SETS = [
    ("set steps true", ["train.steps=true"], "train.steps"),
    ("set hidden big", ["model.params.hidden=big"], "model.params.hidden"),
    ("set seeds twice", ["grid.seed=[0, 0]"], "grid.seed"),
    ("set steps nan", ["train.steps=.nan"], "train.steps"),
    ("set a long name", ["name=" + "n" * 300], "name"),
    ("set duplicate key", ["train={steps: 1, steps: 2}"], "duplicate key 'steps'"),
    ("set limit zero", ["limits.trials=0"], "limits.trials"),
    ("set a grid over limits.trials", ["limits.trials=1"], "grid"),
    ("set update misspelt", ["train.update=simultanous"], "train.update"),
    ("set batch_unit a number", ["train.batch_unit=2"], "train.batch_unit"),
]


def _write(tmp_path, content) -> str:
    p = tmp_path / "bad.yaml"
    (p.write_bytes if isinstance(content, bytes) else p.write_text)(content)
    return str(p)


@pytest.fixture
def cli(monkeypatch):
    from flows.cli import app
    from flows.cli.common import console

    monkeypatch.setattr(console, "width", 1000)  # one line per error: paths are never wrapped
    return app


def _refused(result, named: str) -> None:
    out = result.output
    assert result.exit_code == 2, out
    assert isinstance(result.exception, SystemExit), repr(result.exception)  # no exception escaped
    assert out.startswith("error:") and "Traceback" not in out, out
    assert (f"{named}:" if "." in named or named in ("name", "grid", "pack_seeds") else named) in out, out
    assert len(out) < 2000, "a bad value is not echoed back whole"


@pytest.mark.parametrize("over, named", [c[1:] for c in OVER], ids=[c[0] for c in OVER])
def test_bad_values_are_refused_naming_the_field(tmp_path, cli, over, named):
    path = _write(tmp_path, yaml.safe_dump(tiny_config(**over), allow_unicode=True))
    _refused(CliRunner().invoke(cli, ["validate", path]), named)


@pytest.mark.parametrize("content, named", [c[1:] for c in FILES], ids=[c[0] for c in FILES])
def test_bad_files_are_refused_naming_the_defect(tmp_path, cli, content, named):
    path = _write(tmp_path, content)
    result = CliRunner().invoke(cli, ["validate", path])
    _refused(result, named)
    if named in ("not UTF-8", "MB", "alias"):
        assert path in result.output, "the file is named"


@pytest.mark.parametrize("sets, named", [c[1:] for c in SETS], ids=[c[0] for c in SETS])
def test_bad_overrides_are_refused_like_the_file(tmp_path, cli, sets, named):
    path = _write(tmp_path, _OK)
    args = [a for s in sets for a in ("--set", s)]
    _refused(CliRunner().invoke(cli, ["validate", path, *args]), named)


def test_the_corpus_has_at_least_80_bad_inputs():
    assert len(OVER) + len(FILES) + len(SETS) >= 80


RUN_SAMPLE = ["steps a bool", "gp_lambda nan", "z_dim 1e12", "eval samples 1e11", "seed twice", "name with newline",
              "weights path on 2-D data", "hidden a string"]


def test_run_refuses_before_ray_prefect_or_storage(tmp_path):
    """The real entry point, a fresh interpreter per file: exit 2, one error, the field named, and
    nothing written to storage (Ray and Prefect are never imported: see test_config_errors)."""
    store = tmp_path / "store"
    exe = os.path.join(os.path.dirname(sys.executable), "gansweep")
    cases = {c[0]: c for c in OVER}
    for name in RUN_SAMPLE:
        _, over, named = cases[name]
        path = tmp_path / f"{len(os.listdir(tmp_path))}.yaml"
        path.write_text(yaml.safe_dump(tiny_config(**over)))
        r = subprocess.run([exe, "run", str(path), "--storage", str(store)], capture_output=True, text=True,
                           timeout=120, env={**os.environ, "COLUMNS": "1000"})
        out = r.stdout + r.stderr
        assert r.returncode == 2 and f"{named}:" in out and "Traceback" not in out, (name, out)
    assert not store.exists()


def test_validation_does_not_import_torch():
    code = "import gan_tasks.config, flows.cli, sys; assert 'torch' not in sys.modules, 'torch imported'"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]


def test_a_raised_limit_admits_what_it_names():
    from gan_tasks.config import parse_config

    sweep = parse_config(tiny_config(train={"steps": 20_000_000}, limits={"steps": 50_000_000}))
    assert sweep.train.steps == 20_000_000 and sweep.limits.steps == 50_000_000


def test_duplicate_check_is_linear():
    """20,000 seeds with one repeat at the end (limit raised): refused in well under a second of
    checking; a pairwise check took 5 s for 20,000 ids."""
    from gan_tasks.config import ConfigError, parse_config

    seeds = list(range(20_000)) + [19_999]
    t0 = time.perf_counter()
    with pytest.raises(ConfigError, match=r"grid\.seed: entries 19999 and 20000 are the same seed"):
        parse_config(tiny_config(grid={**G, "seed": seeds}, limits={"trials": 100_000}))
    assert time.perf_counter() - t0 < 3.0


def test_every_parameter_of_every_entry_has_a_schema_its_defaults_pass():
    from gan_tasks.methods.catalog import ACTIVATIONS, LOSSES, MODELS, OPTIMIZERS
    from gan_tasks.data.datasets import DATASETS
    from gan_tasks.methods.models import ACTIVATIONS as BUILT
    from gan_tasks.methods.params import check_params

    for reg in (LOSSES, OPTIMIZERS, MODELS, DATASETS):
        for name in reg.names():
            spec = reg.get(name)
            for kind in ("points", "images"):
                defaults = spec.defaults_for(kind) if hasattr(spec, "defaults_for") else spec.defaults
                assert set(defaults) <= set(spec.schema), (reg.kind, name)
                check_params(reg.kind, name, {k: list(v) if isinstance(v, tuple) else v for k, v in defaults.items()},
                             defaults, spec.schema)
    assert set(BUILT) == set(ACTIVATIONS)


@pytest.mark.parametrize("args", [["run", "CONFIG"], ["serve", "CONFIG"], ["report", "s"], ["published", "s"],
                                  ["compare", "a", "b"], ["data", "upload", "mnist", "."], ["evaluator", "train", "mnist"],
                                  ["defaults-table"], ["bench", "--short"]], ids=lambda a: a[0])
def test_a_bad_storage_url_is_one_line_and_exit_2_in_every_command(tmp_path, cli, args):
    config = _write(tmp_path, yaml.safe_dump(tiny_config()))
    r = CliRunner().invoke(cli, [config if a == "CONFIG" else a for a in args] + ["--storage", "ftp://host/x"])
    assert r.exit_code == 2 and isinstance(r.exception, SystemExit), r.output
    assert r.output.startswith("error: storage: unsupported scheme 'ftp'") and len(r.output.splitlines()) == 1, r.output


def test_errors_become_one_line_in_one_place():
    """Commands raise UserError where the problem is found; only flows/cli/common.py turns it into a line
    and an exit code (serve's Ctrl-C and `list` showing a broken plugin as a row aside)."""
    import ast
    from pathlib import Path

    handlers = {}
    for path in sorted((Path(__file__).resolve().parents[1] / "flows" / "cli").glob("*.py")):
        caught = [ast.unparse(h.type) for h in ast.walk(ast.parse(path.read_text()))
                  if isinstance(h, ast.ExceptHandler)]
        if caught:
            handlers[path.name] = caught
    assert handlers == {"common.py": ["UserError"], "run.py": ["KeyboardInterrupt"], "catalog.py": ["PluginError"]}, \
        handlers
