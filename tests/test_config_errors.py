"""Malformed sweep configs: each rejected before any Ray or Prefect work, naming the field."""
import pytest

from gan_tasks.config import ConfigError, check_sweep_id, parse_config
from gan_tasks.data.storage import Storage
from tests.conftest import tiny_config

G = {"loss": ["minimax"], "optimizer": ["adam"], "seed": [0]}

CASES = [  # (id, config override, field named in the message, a word that must appear)
    ("unknown top key", {"epochs": 3}, "epochs", "unknown key"),
    ("unknown train key", {"train": {"stepz": 3}}, "train.stepz", "unknown key"),
    ("unknown grid axis", {"grid": {**G, "lr": [1]}}, "grid.lr", "unknown key"),
    ("steps negative", {"train": {"steps": -1}}, "train.steps", "greater than 0"),
    ("steps zero", {"train": {"steps": 0}}, "train.steps", "greater than 0"),
    ("steps wrong type", {"train": {"steps": "ten"}}, "train.steps", "integer"),
    ("batch size zero", {"train": {"batch_size": 0}}, "train.batch_size", "greater than 0"),
    ("empty loss axis", {"grid": {**G, "loss": []}}, "grid.loss", "at least 1"),
    ("empty optimizer axis", {"grid": {**G, "optimizer": []}}, "grid.optimizer", "at least 1"),
    ("empty seed axis", {"grid": {**G, "seed": []}}, "grid.seed", "at least 1"),
    ("seed not int", {"grid": {**G, "seed": ["x"]}}, "grid.seed.0", "integer"),
    ("unknown loss", {"grid": {**G, "loss": ["wgan-xx"]}}, "grid.loss.0", "valid: "),
    ("unknown optimizer", {"grid": {**G, "optimizer": ["lion"]}}, "grid.optimizer.0", "valid: "),
    ("unknown dataset", {"dataset": "imagenet"}, "dataset", "valid: "),
    ("unknown model", {"model": "resnet"}, "model", "valid: "),
    ("unknown loss param", {"grid": {**G, "loss": [{"name": "wgan", "params": {"clipp": 1}}]}}, "grid.loss.0",
     "valid: clip"),
    ("lsgan a == b", {"grid": {**G, "loss": [{"name": "lsgan", "params": {"a": 1, "b": 1}}]}}, "grid.loss.0",
     "must differ"),
    ("negative gpus", {"resources": {"gpus_per_trial": -0.5}}, "resources.gpus_per_trial", "greater than or equal"),
    ("zero cpus", {"resources": {"cpus_per_trial": 0}}, "resources.cpus_per_trial", "greater than 0"),
    ("dataset with ..", {"dataset": "../etc"}, "dataset", "may hold only"),
    ("dataset with /", {"dataset": "ring-8/x"}, "dataset", "may hold only"),
    ("bad sweep name", {"name": "a b/c"}, "name", "may hold only"),
    ("negative lr", {"grid": {**G, "optimizer": [{"name": "adam", "lr_g": -1}]}}, "grid.optimizer.0.lr_g",
     "greater than 0"),
    ("unknown optimizer param", {"grid": {**G, "optimizer": [{"name": "sgd", "params": {"nesterov2": 1}}]}},
     "grid.optimizer.0", "valid: momentum"),
    ("eval samples zero", {"evaluation": {"n_samples": 0}}, "evaluation.n_samples", "greater than 0"),
    ("grid not a mapping", {"grid": ["minimax"]}, "grid", "valid dictionary"),
    ("loss axis not a list", {"grid": {**G, "loss": "minimax"}}, "grid.loss", "valid tuple"),
    ("keep zero checkpoints", {"train": {"keep_checkpoints": 0}}, "train.keep_checkpoints", "greater than 0"),
    ("checkpoint_every zero", {"train": {"checkpoint_every": 0}}, "train.checkpoint_every", "greater than 0"),
    ("max_parallel zero", {"resources": {"max_parallel": 0}}, "resources.max_parallel", "greater than 0"),
    ("pack_seeds zero", {"pack_seeds": 0}, "pack_seeds", "greater than or equal to 1"),
    ("unknown trick", {"tricks": {"dropout": 0.5}}, "tricks.dropout", "unknown key"),
    ("label smoothing too big", {"tricks": {"label_smoothing": 0.7}}, "tricks.label_smoothing", "less than 0.5"),
    ("unknown metric", {"evaluation": {"image_metrics": ["bleu"]}}, "evaluation", "bleu"),
]


@pytest.mark.parametrize("over, field, word", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_malformed_config_is_rejected_naming_the_field(over, field, word):
    with pytest.raises(ConfigError) as e:
        parse_config(tiny_config(**over))
    msg = str(e.value)
    assert f"  {field}:" in msg, msg
    assert word in msg, msg


def test_there_are_at_least_twenty_cases():
    assert len(CASES) >= 20


@pytest.mark.parametrize("url", ["gs://bucket/x", "http://host/x", "ftp://a/b", "s3://", ""])
def test_unsupported_storage_urls_are_rejected(url):
    with pytest.raises(ValueError, match="storage: "):
        Storage.parse(url)


@pytest.mark.parametrize("sid", ["../up", "a/b", "x y", ""])
def test_bad_sweep_ids_are_rejected(sid):
    with pytest.raises(ConfigError, match="sweep_id"):
        check_sweep_id(sid)


def test_a_duplicated_grid_entry_is_rejected():
    with pytest.raises(ConfigError, match=r"grid\.seed: entries 0 and 1 are the same seed"):
        parse_config(tiny_config(grid={**G, "seed": [0, 0]}))


def test_the_cli_rejects_every_case_before_importing_ray_or_prefect(tmp_path):
    """Each bad YAML through `gansweep run`, in a fresh interpreter: exit 2, the field named, and
    neither Ray nor Prefect even imported (so no cluster, no flow run), nothing written to storage."""
    import json
    import subprocess
    import sys

    import yaml

    paths = []
    for i, (_, over, field, _) in enumerate(CASES):
        p = tmp_path / f"bad{i}.yaml"
        p.write_text(yaml.safe_dump(tiny_config(**over)))
        paths.append((str(p), field))
    store = tmp_path / "store"
    code = f"""
import json, sys
from typer.testing import CliRunner
from flows.cli import app
runs = [(CliRunner().invoke(app, ["run", p, "--storage", {str(store)!r}]), f) for p, f in {paths!r}]
out = [(r.exit_code, r.output, f) for r, f in runs]
print(json.dumps({{"out": out, "ray": "ray" in sys.modules, "prefect": "prefect" in sys.modules}}))
"""
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                       env={**__import__("os").environ, "COLUMNS": "400"})
    assert r.returncode == 0, r.stderr[-3000:]
    res = json.loads(r.stdout.strip().splitlines()[-1])
    for exit_code, output, field in res["out"]:
        assert exit_code == 2, output
        assert "error:" in output and f"{field}:" in output, output
    assert not res["ray"] and not res["prefect"]
    assert not store.exists()
    print(f"{len(res['out'])} malformed configs rejected by the CLI before any Ray or Prefect import")


@pytest.mark.parametrize("command", [["report", "s1"], ["published", "s1"], ["compare", "s1", "s2"]])
def test_commands_reading_sweeps_refuse_a_bad_storage_url_in_one_line(command):
    import subprocess
    import sys
    from pathlib import Path

    out = subprocess.run([str(Path(sys.executable).parent / "gansweep"), *command, "--storage", "ftp://a/b"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 2, out.stdout + out.stderr
    assert out.stdout.strip() == "error: storage: unsupported scheme 'ftp' in 'ftp://a/b'; valid: file, s3 or a local path"
    assert "Traceback" not in out.stderr
