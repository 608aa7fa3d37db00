"""The dcgan family at resolution 32 / 64 / 128 (model `dcgan`), and its refusals naming both shapes."""
from __future__ import annotations

import pytest
import torch
import yaml
from typer.testing import CliRunner

from flows.cli import app
from gan_tasks.config import ConfigError, expand_grid, load_config, parse_config
from gan_tasks.data.ingest import IngestOptions, add
from gan_tasks.methods.models import build_models
from gan_tasks.training.trial import Trial
from tests.conftest import tiny_config
from tests.test_ingest import mnist_arrays, write_pngs  # noqa: F401 - the fixture


@pytest.mark.parametrize("res", [32, 64, 128])
def test_shapes_at_each_resolution(res):
    g, d = build_models("dcgan", (3, res, res), 100, {"resolution": res, "width": 8})
    g.eval()
    x = g(torch.randn(2, 100))
    assert x.shape == (2, 3, res, res) and d(x).shape == (2, 1)


def test_resolution_32_is_dcgan_32():
    torch.manual_seed(0)
    g32, d32 = build_models("dcgan-32", (3, 32, 32), 100, {})
    torch.manual_seed(0)
    g, d = build_models("dcgan", (3, 32, 32), 100, {"resolution": 32})
    for a, b in zip([*g32.state_dict().values(), *d32.state_dict().values()],
                    [*g.state_dict().values(), *d.state_dict().values()]):
        assert torch.equal(a, b)


def _cfg(**over):
    return tiny_config(**{"model": "dcgan", "grid": {"loss": ["non-saturating"], "optimizer": ["adam"], "seed": [0]},
                          "train": {"steps": 2, "batch_size": 8, "log_every": 1}, **over})


def test_a_resolution_that_does_not_match_is_refused_naming_both():
    with pytest.raises(ConfigError, match=r"model.params.resolution: 64: model 'dcgan' makes 64x64 images "
                                          r"\(valid resolutions: 32, 64, 128\), dataset 'cifar10' is 3x32x32; "
                                          r"set resolution 32"):
        parse_config(_cfg(dataset="cifar10"))
    with pytest.raises(ConfigError, match="model.params.resolution: 48: .*valid resolutions: 32, 64, 128"):
        parse_config(_cfg(dataset="cifar10", model={"name": "dcgan", "params": {"resolution": 48}}))
    with pytest.raises(ConfigError, match="model 'dcgan' takes 32/64/128-pixel images, dataset 'mnist' is 1x28x28"):
        parse_config(_cfg(dataset="mnist"))
    assert parse_config(_cfg(dataset="cifar10", model={"name": "dcgan", "params": {"resolution": 32}}))


def test_dcgan_64_trains_on_an_added_64x64_dataset(tmp_path, local_storage, mnist_arrays):  # noqa: F811
    x, y = mnist_arrays
    write_pngs(tmp_path / "png", x[:40], y[:40])
    add(local_storage, "digits64", str(tmp_path / "png"), IngestOptions(size=64, mode="RGB"))
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(_cfg(dataset="digits64", model={"name": "dcgan", "params": {"width": 8}})))
    r = CliRunner().invoke(app, ["validate", str(path), "--storage", local_storage.url])
    assert r.exit_code == 0 and "3x64x64" in r.output
    t = Trial(expand_grid(load_config(str(path), storage=local_storage))[0], local_storage, "s")
    assert all(torch.isfinite(torch.tensor(t.train_step(log_now=True)["loss_d"])) for _ in range(2))
    assert t.sample(2).shape == (2, 3, 64, 64)
