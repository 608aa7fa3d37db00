"""Plugin code as part of a trial (gan_tasks/config/plugins.py PluginCode, flows/guard/changed.py), what is
shipped to a cluster (flows/actors/shipping.py) and the errors around it, without training: trial rows
written as the trial loop writes them, for trials that carry plugin records."""
from __future__ import annotations

import json
import re
from datetime import datetime, timezone

import pytest

from flows.actors.shipping import ShippingRefused, check_size, code_key
from flows.guard.changed import CodeChanged, check_code
from gan_tasks.config import expand_grid, load_config
from gan_tasks.config.plugins import PluginCode
from gan_tasks.evaluation.compare import code_changes
from gan_tasks.methods.catalog import Loss
from gan_tasks.methods.plugins import Provider
from gan_tasks.methods.registry import Registry
from gan_tasks.training.rows import trial_row, write_trial_row
from tests.test_plugins import QUICKSTART, ROOT, _dist, _error, gansweep

NOW = datetime(2026, 12, 1, tzinfo=timezone.utc)


def _code(h: str, version: str = "0.1.0") -> PluginCode:
    return PluginCode(kind="loss", name="lsgan-m110", dist="my-lib", version=version, code_hash=h,
                      entry_point="my_lib.specs:X")


def _trials(h: str | None) -> list:
    """The quickstart's trials; its lsgan-m110 ones as if a plugin of code h provided that loss."""
    out = expand_grid(load_config(str(QUICKSTART), ["grid.seed=[0, 1]"]))
    return [t.model_copy(update={"plugins": (_code(h),)}) if h and t.loss.name == "lsgan-m110" else t for t in out]


def _store(storage, sweep_id: str, trials: list) -> None:
    storage.write_bytes(QUICKSTART.read_bytes(), "sweeps", sweep_id, "config.yaml")
    for t in trials:
        write_trial_row(storage, trial_row(t, sweep_id, "completed", 100, NOW, NOW))
        storage.write_bytes(b"x", "sweeps", sweep_id, "checkpoints", t.trial_id, "step-000000100.pt")


def test_built_in_trials_keep_their_ids_and_plugin_code_changes_an_id():
    plain = expand_grid(load_config(str(QUICKSTART), []))
    assert [t.trial_id for t in plain][:3] == ["7def7febeeeb", "150b45fdb46a", "4a4ba7cb196a"]  # as before plugins
    assert all(t.plugins == () for t in plain)
    a, b, c = (plain[0].model_copy(update={"plugins": (p,)}) for p in (_code("aa"), _code("bb"), _code("aa", "0.2")))
    assert len({plain[0].trial_id, a.trial_id, b.trial_id, c.trial_id}) == 4
    row = trial_row(a, "s", "completed", 1, NOW, NOW)
    assert json.loads(row["plugins"]) == [{"kind": "loss", "name": "lsgan-m110", "dist": "my-lib",
                                           "version": "0.1.0", "code_hash": "aa"}]
    assert trial_row(plain[0], "s", "completed", 1, NOW, NOW)["plugins"] == "[]"
    assert code_key([plain[0]]) == "" and code_key([a]) != code_key([b])  # warm actors kept per code


def test_a_rerun_with_changed_plugin_code_is_refused_then_retrains_exactly_its_trials(local_storage):
    old, new = _trials("1111"), _trials("2222")
    _store(local_storage, "night", old)
    assert check_code(local_storage, "night", old, retrain=False) == []  # same code: nothing to say
    with pytest.raises(CodeChanged) as e:
        check_code(local_storage, "night", new, retrain=False)
    assert str(e.value) == ("sweep night: plugin code changed since its trials ran: my-lib 0.1.0 code 1111 -> "
                            "my-lib 0.1.0 code 2222 (2 trials used it); --retrain-changed retrains exactly those, "
                            "or choose another --sweep-id")
    assert e.value.exit_code == 2
    said = []
    moved = check_code(local_storage, "night", new, retrain=True, say=said.append)
    assert moved == sorted(t.trial_id for t in old if t.plugins)  # exactly the plugin's trials
    left = {n.removesuffix(".parquet") for n in local_storage.ls("sweeps", "night", "trials")}
    assert left == {t.trial_id for t in old if not t.plugins}
    assert set(local_storage.ls("sweeps", "night", "superseded", "trials")) == {f"{t}.parquet" for t in moved}
    assert not any(local_storage.exists("sweeps", "night", "checkpoints", t) for t in moved)
    assert "2 trials moved to sweeps/night/superseded/" in said[0]


def test_compare_puts_each_nights_plugin_code_side_by_side(local_storage):
    _store(local_storage, "n1", _trials("1111"))
    _store(local_storage, "n2", _trials("2222"))
    _store(local_storage, "n3", _trials("2222"))
    m = code_changes(local_storage, "n1", "n2").set_index("loss")
    assert m.code_a["lsgan-m110"] == "my-lib 0.1.0 1111" and m.code_b["lsgan-m110"] == "my-lib 0.1.0 2222"
    assert m.changed.to_dict() == {"non-saturating": False, "lsgan-m110": True, "wgan": False}
    assert not code_changes(local_storage, "n2", "n3").changed.any()
    _store(local_storage, "b1", _trials(None))
    _store(local_storage, "b2", _trials(None))
    assert code_changes(local_storage, "b1", "b2").empty  # built-ins only: nothing to show


def test_shipped_code_over_the_limit_is_refused_naming_the_largest_files(tmp_path):
    pkg = tmp_path / "my_lib"
    (pkg / "data").mkdir(parents=True)
    (pkg / "specs.py").write_text("X = 1\n")
    (pkg / "data" / "weights.bin").write_bytes(b"\0" * (3 << 20))
    (pkg / "__pycache__").mkdir()
    (pkg / "__pycache__" / "specs.pyc").write_bytes(b"\0" * (5 << 20))  # not shipped, not counted
    assert check_size([pkg], 4 << 20) == (3 << 20) + 6
    with pytest.raises(ShippingRefused) as e:
        check_size([pkg], 1 << 20)
    assert str(e.value).startswith("plugin code to ship is 3.0 MiB, over the limit of 1.0 MiB (limits.shipped_bytes); "
                                   f"largest files: {pkg / 'data' / 'weights.bin'} (3.0 MiB), ")
    assert e.value.exit_code == 2


def test_a_worker_adopts_an_entry_it_cannot_discover(tmp_path, monkeypatch):
    (tmp_path / "shipped_only.py").write_text("from gan_tasks.plugin_api import Loss, Ref\n"
                                              "SPEC = Loss(Ref('x:d'), Ref('x:g'), {'d_steps': 1})\n")
    monkeypatch.syspath_prepend(str(tmp_path))  # the code, without any distribution's metadata
    reg = Registry("loss", Loss, plugins=True)
    with pytest.raises(ValueError, match="unknown loss 'shipped'"):
        reg.get("shipped")
    provider = Provider("shipped", "gansweep.losses", "shipped_only:SPEC", "my-lib", "0.1.0")
    reg.adopt("shipped", provider)
    assert reg.get("shipped").defaults == {"d_steps": 1} and reg.provider("shipped") == provider
    reg.adopt("shipped", provider)  # already there: a no-op


def test_a_plugin_model_whose_output_does_not_fit_the_dataset_is_refused_before_the_run(tmp_path):
    nets = ("from torch import nn\n"
            "def build(data_shape, z_dim, out):\n"
            "    return nn.Linear(z_dim, out), nn.Linear(data_shape[0], 1)\n")
    spec = ("from gan_tasks.plugin_api import Model, Num, Ref\n"
            "SPEC = Model(Ref('wide_nets:build'), {'out': 3}, params={'out': Num(int, 1, 8)}, data_kinds=('points',))\n")
    site = _dist(tmp_path / "site", "wide-lib", "0.4", "[gansweep.models]\nwide = wide_specs:SPEC\n",
                 {"wide_specs": spec, "wide_nets": nets})
    r = gansweep("run", str(QUICKSTART), "--storage", str(tmp_path / "store"), "--set", "model=wide",
                 paths=(site,), cwd=tmp_path)
    out = r.stdout + r.stderr
    assert r.returncode == 2 and "Traceback" not in out, out[-3000:]
    assert ("error: model 'wide' of wide-lib 0.4: G makes samples of shape (3,) from z of train.z_dim 16; dataset "
            "'ring-8' has samples of shape (2,)") in out
    assert not (tmp_path / "store" / "sweeps").exists()


def test_the_pip_list_takes_requirements(tmp_path):
    assert _error(gansweep("validate", str(QUICKSTART), "--set", "pip=['scikit-learn>=1.4', 'not a req!']"))\
        .startswith("pip.1: 'not a req!' is not a requirement like 'scikit-learn>=1.4'")
    assert gansweep("validate", str(QUICKSTART), "--set", "pip=['scikit-learn>=1.4']").returncode == 0


def test_feature_extractors_are_discovered_like_the_other_kinds(tmp_path):
    spec = ("from gan_tasks.plugin_api import FeatureExtractor, Ref\n"
            "TINY = FeatureExtractor(build=Ref('feat_nets:TinyFeatures'), dim=64, doc='64 random projections')\n"
            "NO_DIM = FeatureExtractor(build=Ref('feat_nets:TinyFeatures'))\n")
    site = _dist(tmp_path / "site", "feat-lib", "1.2", "[gansweep.feature_extractors]\ntiny-feat = feat_specs:TINY\n"
                 "no-dim = feat_specs:NO_DIM\n", {"feat_specs": spec})
    r = gansweep("list", "feature-extractors", paths=(site,))
    assert r.returncode == 0, r.stdout + r.stderr
    rows = {m.group(1): m.group(2) for m in re.finditer(r"│ (\S+)\s+│ ([^│]*)│ ([^│]*)", r.stdout)}
    assert rows["tiny-feat"].startswith("plugin feat-lib 1.2: 64 random projections")
    assert "64-d features (feat_nets:TinyFeatures)" in r.stdout
    assert "BROKEN (feat-lib 1.2): plugin 'no-dim' of feat-lib 1.2 (entry point feat_specs:NO_DIM) is an invalid " \
           "spec: dim 0: expected the feature dimension, a positive integer" in r.stdout
    assert " inception-v3 " in r.stdout and " classifier " in r.stdout
    mnist = ROOT / "configs" / "mnist-dcgan-wgan.yaml"
    r = gansweep("validate", str(mnist), "--set", "evaluation.feature_extractor=tiny-feat", paths=(site,))
    assert r.returncode == 0, r.stdout + r.stderr  # no weights file asked of a plugin's extractor
    assert re.search(r"plugin feature extractor tiny-feat: feat-lib 1\.2, code sha256 [0-9a-f]{16}", r.stdout), r.stdout
    line = _error(gansweep("validate", str(mnist), "--set", "evaluation.feature_extractor=nope", paths=(site,)))
    assert line.startswith("evaluation") and "unknown feature extractor 'nope'" in line
    assert line.endswith("; plugins: no-dim (feat-lib 1.2), tiny-feat (feat-lib 1.2)")
