"""The example plugin through the real flow, as a user runs it (`gansweep run`, local Ray, the example
installed into a throwaway pip --target folder on PYTHONPATH): its training program, loss, model and metric
in a trial killed with SIGKILL mid-training that resumes bit-identically; and its code as part of the
trials' identity: after a one-line change a re-run is refused, and --retrain-changed retrains exactly the
trials that used it."""
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import psutil
import pytest
import torch

from gan_tasks.methods.plugins import code_hash
from tests.conftest import EXAMPLE

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]
GANSWEEP = [sys.executable, "-c", "from flows.cli import app; app()"]
TINY = ["--set", "grid.seed=[0]", "--set", "evaluation.n_samples=500"]


def _env(site: Path) -> dict:
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(site)]), "COLUMNS": "2000"}


def _run(site: Path, store: Path, sweep_id: str, *sets: str) -> subprocess.CompletedProcess:
    return subprocess.run([*GANSWEEP, "run", str(EXAMPLE / "sweep.yaml"), "--storage", str(store), "--sweep-id",
                           sweep_id, *TINY, *sets], capture_output=True, text=True, env=_env(site), cwd=store.parent,
                          timeout=600)


def _final(store: Path, sweep_id: str) -> dict:
    (ckpt,) = [p for p in (store / "sweeps" / sweep_id / "checkpoints").glob("*/*.pt") if "000600" in p.name]
    return torch.load(io.BytesIO(ckpt.read_bytes()), weights_only=True)


def _trainers(pid: int) -> list[int]:
    """The run's trial actors (Ray titles a worker process by its actor class)."""
    out = []
    for p in psutil.Process(pid).children(recursive=True):
        try:
            if " ".join(p.cmdline()).startswith("ray::TrialActor"):
                out.append(p.pid)
        except psutil.Error:  # gone (or a zombie) meanwhile
            pass
    return out


def test_a_plugin_program_trial_killed_by_sigkill_resumes_bit_identically(tmp_path, example_site):
    store = tmp_path / "store"
    sets = ["--set", "program=lookahead-gan", "--set", "grid.loss=[rpgan-r1]", "--set", "train.steps=600",
            "--set", "train.checkpoint_every=100", "--set", "train.log_every=20"]
    log = tmp_path / "crash.log"  # a file, not a pipe: nobody reads a pipe while the run goes on
    proc = subprocess.Popen([*GANSWEEP, "run", str(EXAMPLE / "sweep.yaml"), "--storage", str(store), "--sweep-id",
                             "crash", *TINY, *sets], stdout=log.open("w"), stderr=subprocess.STDOUT,
                            env=_env(example_site), cwd=tmp_path)
    killed = None
    deadline = time.monotonic() + 300
    while killed is None and time.monotonic() < deadline and proc.poll() is None:
        if list((store / "sweeps" / "crash" / "checkpoints").glob("*/step-*.pt")):  # past its first checkpoint
            trainers = _trainers(proc.pid)
            if trainers:
                killed = trainers[0]
                os.kill(killed, signal.SIGKILL)
        time.sleep(0.05)
    if killed is None:
        proc.kill()
    proc.wait(timeout=600)
    out = log.read_text()
    assert killed is not None, out[-3000:]
    assert proc.returncode == 0, out[-3000:]
    r = _run(example_site, store, "ref", *sets)  # the same trial, never killed
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]

    a, b = _final(store, "ref"), _final(store, "crash")
    for key in ("G", "D"):
        for name, tensor in a[key].items():
            assert torch.equal(tensor, b[key][name]), f"{key}.{name} differs after resume"
    for net in ("G", "D"):  # the program's own state: Lookahead's slow weights
        for name, tensor in a["slow"][net].items():
            assert torch.equal(tensor, b["slow"][net][name]), f"slow {net}.{name} differs after resume"
    m_ref, m_crash = (pd.read_parquet(store / "sweeps" / s / "metrics").sort_values("step").reset_index(drop=True)
                      for s in ("ref", "crash"))
    assert list(m_crash.step) == list(range(20, 601, 20))  # no gaps, no duplicates
    cols = ["step", "loss_d", "loss_g", "penalty", "grad_norm_d", "grad_norm_g"]
    pd.testing.assert_frame_equal(m_ref[cols], m_crash[cols])
    trials = pd.read_parquet(store / "sweeps" / "crash" / "trials")
    assert list(trials.status) == ["completed"]
    assert {p["name"] for p in json.loads(trials.plugins.iloc[0])} == {"lookahead-gan", "rpgan-r1", "deep-mlp",
                                                                        "energy-distance"}


def test_a_rerun_after_a_plugin_changed_is_refused_then_retrains_exactly_its_trials(tmp_path, example_site):
    site = Path(shutil.copytree(example_site, tmp_path / "site"))  # a copy of the plugin to change
    store = tmp_path / "store"
    sets = ["--set", "model=mlp", "--set", "evaluation.metrics=[]", "--set", "train.steps=40",
            "--set", "train.checkpoint_every=20", "--set", "train.log_every=20"]  # only rpgan-r1 is a plugin
    r = _run(site, store, "night", *sets)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    before = pd.read_parquet(store / "sweeps" / "night" / "trials").set_index("loss")
    old = code_hash(site / "gansweep_example")
    assert json.loads(before.plugins["non-saturating"]) == []
    assert json.loads(before.plugins["rpgan-r1"])[0]["code_hash"] == old

    losses = site / "gansweep_example" / "losses.py"
    losses.write_text(losses.read_text() + "# one line more\n")
    new = code_hash(site / "gansweep_example")
    r = _run(site, store, "night", *sets)
    out = r.stdout + r.stderr
    assert r.returncode == 2 and "Traceback" not in out, out[-3000:]
    assert (f"error: sweep night: plugin code changed since its trials ran: gansweep-example 0.1.0 code {old} -> "
            f"gansweep-example 0.1.0 code {new} (1 trials used it); --retrain-changed retrains exactly those") in out

    r = _run(site, store, "night", *sets, "--retrain-changed")
    out = r.stdout + r.stderr
    assert r.returncode == 0, out[-3000:]
    assert "non-saturating/adam/seed0 already completed in night: skipped" in out
    assert "rpgan-r1/adam/seed0: completed after 40 steps" in out
    after = pd.read_parquet(store / "sweeps" / "night" / "trials").set_index("loss")
    assert after.trial_id["non-saturating"] == before.trial_id["non-saturating"]
    assert after.finished_at["non-saturating"] == before.finished_at["non-saturating"]  # not retrained
    assert after.trial_id["rpgan-r1"] != before.trial_id["rpgan-r1"]
    assert json.loads(after.plugins["rpgan-r1"])[0]["code_hash"] == new
    assert (store / "sweeps" / "night" / "superseded" / "trials" / f"{before.trial_id['rpgan-r1']}.parquet").exists()
    ranks = pd.read_parquet(store / "sweeps" / "night" / "rankings")
    assert (ranks.seeds == 1).all()  # the superseded trial is not counted beside its replacement
