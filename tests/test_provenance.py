"""FID / KID / IS provenance (gan_tasks/evaluation/provenance.py): recorded in every row, the reference
sample a seeded subset, its statistics cached per provenance, and numbers made differently refused by
the rankings and by `gansweep compare`, saying why."""
import json
from datetime import datetime, timezone

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
import yaml
from typer.testing import CliRunner

from flows.cli import app
from gan_tasks.config import expand_grid, parse_config
from gan_tasks.data import schema
from gan_tasks.data.images import upload
from gan_tasks.data.storage import Storage
from gan_tasks.data.userdata import upload_id
from gan_tasks.evaluation.compare import compare_cells
from gan_tasks.evaluation.evaluate import evaluate_trial
from gan_tasks.evaluation.provenance import difference, key, reference_indices
from gan_tasks.evaluation.rankings import rank_cells
from gan_tasks.training.rows import trial_row, write_trial_row
from gan_tasks.training.trial import run_trial
from tests.conftest import DATA, tiny_config
from tests.evalkit import copy_classifier, mnist_store

BASE = {"extractor": "classifier", "weights_hash": "feedc0ffee123456", "feature_layer": "features",
        "torch_fidelity": "0.3.0", "resize": "stored 1x28x28 uint8", "n_real": 1000, "n_fake": 1000,
        "reference_split": "train", "reference_seed": 0, "dataset_id": "abc", "g_ema": False}


def prov(**change) -> str:
    return json.dumps({**BASE, **change}, sort_keys=True)


def test_reference_sample_is_a_seeded_random_subset():
    a = reference_indices(60_000, 500, 0)
    assert len(set(a)) == 500 and (np.diff(a) > 0).all() and a.max() < 60_000
    assert not np.array_equal(a, np.arange(500))  # not the first n
    assert np.array_equal(a, reference_indices(60_000, 500, 0))  # the same on every node, every night
    assert len(set(a) & set(reference_indices(60_000, 500, 1))) < 50  # another seed, another sample
    assert np.array_equal(reference_indices(300, 500, 0), np.arange(300))  # fewer images than asked: all


def test_difference_names_each_field_that_differs():
    assert difference("fid", [prov(), prov()]) is None
    assert difference("fid", [prov(n_real=500), prov()]) == "FID not comparable: n_real 500 vs 1000"
    assert difference("kid", [prov(), prov(g_ema=True, reference_seed=3)]) == \
        "KID not comparable: reference_seed 0 vs 3; g_ema false vs true"
    assert "no provenance" in difference("fid", [prov(), None])
    assert difference("modes_covered", ["", None]) is None  # metrics without one compare as before


def _frames(provs: dict[tuple[str, int], str]):
    trials, ev = [], []
    for (loss, seed), p in provs.items():
        tid = f"{loss}-{seed}"
        trials.append({"trial_id": tid, "loss": loss, "optimizer": "adam", "seed": seed, "status": "completed"})
        ev.append({"trial_id": tid, "step": 100, "metric": "fid", "value": 10.0 + seed + (loss == "b") * 5,
                   "provenance": p, "provenance_key": key(json.loads(p))})
    return pd.DataFrame(trials), pd.DataFrame(ev)


def test_rankings_refuse_mixed_provenance_within_a_cell_and_between_cells():
    same = {(c, s): prov() for c in "ab" for s in range(3)}
    r = rank_cells(*_frames(same), "s")
    assert r.p_value.notna().any() and not r.note.str.contains("not comparable").any()
    mixed_cell = {**same, ("a", 2): prov(n_real=500)}
    r = rank_cells(*_frames(mixed_cell), "s").set_index("loss")
    assert "FID not comparable: n_real 1000 vs 500" in r.loc["a", "note"]
    assert np.isnan(r.loc["a", "mean"]) and r.loc["a", "seeds"] == 0  # no statistic over mixed seeds
    assert r.p_value.isna().all() and not r.significant.any()
    between = {**{("a", s): prov() for s in range(3)}, **{("b", s): prov(n_real=500) for s in range(3)}}
    r = rank_cells(*_frames(between), "s").set_index("loss")
    assert r.loc["a", "mean"] == 11 and r.loc["b", "mean"] == 16  # each cell's own figures stand
    assert r.p_value.isna().all() and not r.significant.any()  # but they are not tested against each other
    assert (r.note == "FID not comparable: n_real 1000 vs 500").all()


def _night(p: str, values=(10.0, 11.0, 12.0)) -> pd.DataFrame:
    v = np.asarray(values)
    return pd.DataFrame([{"loss": "x", "optimizer": "adam", "metric": "fid", "values": v, "mean": v.mean(),
                          "std": v.std(ddof=1), "seeds": 3, "seeds_failed": 0, "provenance": (p,)}])


def test_compare_refuses_nights_measured_differently():
    worse = (30.0, 31.0, 32.0)
    assert compare_cells(_night(prov()), _night(prov(), worse)).flagged.all()
    cmp = compare_cells(_night(prov(n_real=500)), _night(prov(), worse))
    assert cmp.note.iloc[0] == "FID not comparable: n_real 500 vs 1000"
    assert not cmp.flagged.any() and cmp.p_value.isna().all()


def _stored_night(st: Storage, sid: str, n_real: int) -> None:
    config = tiny_config(grid={"loss": ["non-saturating"], "seed": [0, 1, 2]})
    st.write_bytes(yaml.safe_dump(config).encode(), "sweeps", sid, "config.yaml")
    trials = expand_grid(parse_config(config))
    now = datetime.now(timezone.utc)
    ev = []
    for t in trials:
        write_trial_row(st, trial_row(t, sid, "completed", 60, now, now))
        ev.append({"sweep_id": sid, "trial_id": t.trial_id, "step": 60, "metric": "fid", "value": 10.0 + t.seed,
                   "extractor": "classifier", "extractor_hash": BASE["weights_hash"],
                   "provenance": prov(n_real=n_real), "provenance_key": key(json.loads(prov(n_real=n_real)))})
    st.write_parquet(pa.Table.from_pylist(ev, schema=schema.EVALUATIONS), "sweeps", sid, "evaluations", "e.parquet")


def test_gansweep_compare_prints_the_refusal(local_storage):
    _stored_night(local_storage, "night-1", 500)
    _stored_night(local_storage, "night-2", 1000)
    r = CliRunner().invoke(app, ["compare", "night-1", "night-2", "--storage", local_storage.url])
    assert r.exit_code == 0, r.output
    assert "refused: non-saturating / adam: FID not comparable: n_real 500 vs 1000" in r.output


def test_fid_below_the_feature_dimension_or_without_kid_is_refused():
    mnist = {**tiny_config(), "dataset": "mnist", "model": "dcgan-28"}
    with pytest.raises(ValueError, match=r"fidelity_samples: 100: FID needs .*\(128\).* use KID"):
        parse_config({**mnist, "evaluation": {"fidelity_samples": 100}})
    parse_config({**mnist, "evaluation": {"fidelity_samples": 100, "image_metrics": ["kid"]}})  # KID: fine
    with pytest.raises(ValueError, match=r"FID is reported with KID beside it .* add kid"):
        parse_config({**mnist, "evaluation": {"image_metrics": ["isc", "fid"]}})
    with pytest.raises(ValueError, match="eval_every_samples: 64"):
        parse_config({**mnist, "evaluation": {"eval_every": 10, "eval_every_samples": 64}})


@pytest.mark.slow
def test_every_row_records_provenance_and_reference_statistics_are_cached_per_it(tmp_path):
    """A dcgan-28 trained 2 steps on MNIST, evaluated (FID/KID, 200 samples, the MNIST classifier) in two
    sweeps: the second reuses the first's reference statistics; another reference seed or sample count
    computes new ones under a new name."""
    st = Storage.parse(str(tmp_path / "store"))
    upload(st, "mnist", str(DATA / "mnist"))
    copy_classifier(mnist_store()[0], st)
    base = {"name": "prov", "dataset": "mnist", "model": "dcgan-28",
            "grid": {"loss": ["non-saturating"], "optimizer": ["adam"], "seed": [0]},
            "train": {"steps": 2, "batch_size": 16, "z_dim": 16, "log_every": 1, "checkpoint_every": 2}}

    def evaluate(sid: str, **ev):
        cfg = parse_config({**base, "evaluation": {"fidelity_samples": 200, "image_metrics": ["fid", "kid"], **ev}})
        trial = expand_grid(cfg)[0]
        if not st.exists("sweeps", sid, "checkpoints"):
            assert run_trial(trial, st, sid)["status"] == "completed"
        rows = evaluate_trial(trial, st, sid, cfg.evaluation)
        return {r["metric"]: r for r in rows}, set(st.ls("evaluators", "stats"))

    first, stats1 = evaluate("night-1")
    p = json.loads(first["fid"]["provenance"])
    assert set(first) == {"fid", "kid", "kid_std"} and all(r["provenance_key"] == key(json.loads(r["provenance"]))
                                                           for r in first.values())
    assert (p["extractor"], p["feature_layer"], p["n_real"], p["n_fake"], p["reference_split"], p["reference_seed"],
            p["g_ema"]) == ("classifier", "features", 200, 200, "train", 0, False)
    assert p["dataset_id"] == upload_id(st, "mnist") and p["weights_hash"] == first["fid"]["extractor_hash"]
    assert p["torch_fidelity"]
    again, stats2 = evaluate("night-1")
    assert stats2 == stats1 and again["fid"]["value"] == first["fid"]["value"]  # reused, not recomputed
    assert again["fid"]["provenance_key"] == first["fid"]["provenance_key"]
    other_seed, stats3 = evaluate("night-1", reference_seed=1)
    assert stats3 > stats2 and other_seed["fid"]["value"] != first["fid"]["value"]
    assert difference("fid", [first["fid"]["provenance"], other_seed["fid"]["provenance"]]) == \
        "FID not comparable: reference_seed 0 vs 1"
    _, stats4 = evaluate("night-1", fidelity_samples=256)
    assert stats4 > stats3
