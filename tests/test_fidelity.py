"""Image metrics through torch-fidelity with the in-domain MNIST classifier, on real MNIST."""
import numpy as np
import pytest
import torch
import torch_fidelity

from gan_tasks.evaluation.classifier import FIDELITY_NAME, fetch
from gan_tasks.data.userdata import open_split
from gan_tasks.evaluation.fidelity import ImageSet, calculate, stats_cache_name, storage_cache
from tests.evalkit import mnist_store


@pytest.fixture(scope="module")
def mnist():
    st, meta = mnist_store()
    weights, h, _ = fetch(st, "mnist")
    test, labels = open_split(st, "mnist", None, "test")
    return {"storage": st, "meta": meta, "weights": weights, "hash": h, "test": test.array(), "labels": labels}


def noisy(images: np.ndarray, sigma: float, seed: int = 0) -> np.ndarray:
    x = images.astype(np.float32) / 255 + sigma * np.random.default_rng(seed).standard_normal(images.shape)
    return (np.clip(x, 0, 1) * 255).round().astype(np.uint8)


def test_classifier_is_accurate_and_scores_real_digits_is_above_9(mnist):
    assert mnist["meta"]["test_accuracy"] >= 0.97  # quarter-MNIST test model; the CLI run reaches 99 %
    out = calculate(mnist["test"][:5000], metrics=["isc"], weights_path=mnist["weights"])
    assert out["inception_score"] >= 9.0, out


class OneDigit(torch.nn.Module):
    """A collapsed generator: whatever z is, the same real '7'."""

    def __init__(self, image: np.ndarray):
        super().__init__()
        self.register_buffer("img", torch.from_numpy(image).float() / 127.5 - 1)

    def forward(self, z):
        return self.img.expand(len(z), -1, -1, -1)


def test_one_repeated_digit_scores_is_about_1_through_the_generator_path(mnist):
    seven = mnist["test"][np.flatnonzero(mnist["labels"] == 7)[0]]
    out = calculate(OneDigit(seven), metrics=["isc"], weights_path=mnist["weights"], n_samples=1000, z_dim=8)
    assert abs(out["inception_score"] - 1.0) < 1e-3, out


def test_fid_of_a_set_against_itself_is_zero(mnist):
    x = mnist["test"][:2000]
    out = calculate(x, x, metrics=["fid"], weights_path=mnist["weights"])
    assert abs(out["fid"]) < 1e-3, out


def test_fid_and_kid_grow_monotonically_with_gaussian_noise(mnist):
    real, fake = mnist["test"][:1500], mnist["test"][1500:3000]
    fids, kids = [], []
    for sigma in (0.0, 0.1, 0.25, 0.5, 1.0):
        out = calculate(noisy(fake, sigma), real, metrics=["fid", "kid"], weights_path=mnist["weights"],
                        kid_subsets=20)
        fids.append(out["fid"]), kids.append(out["kid"])
    assert all(a < b for a, b in zip(fids, fids[1:])), fids
    assert all(a < b for a, b in zip(kids, kids[1:])), kids


def test_wrapper_equals_torch_fidelity_direct_call(mnist):
    real, fake = mnist["test"][:1500], noisy(mnist["test"][1500:3000], 0.2)
    ours = calculate(fake, real, weights_path=mnist["weights"], kid_subsets=10)
    direct = torch_fidelity.calculate_metrics(
        input1=ImageSet(fake), input2=ImageSet(real), isc=True, fid=True, kid=True, prc=True,
        feature_extractor=FIDELITY_NAME, feature_extractor_weights_path=mnist["weights"], cuda=False,
        verbose=False, cache=False, kid_subsets=10, kid_subset_size=1000, save_cpu_ram=True)
    assert ours["fid"] == pytest.approx(direct["frechet_inception_distance"], rel=1e-9)
    assert ours["inception_score"] == pytest.approx(direct["inception_score_mean"], rel=1e-9)
    assert ours["kid"] == pytest.approx(direct["kernel_inception_distance_mean"], rel=1e-9)
    assert ours["precision"] == pytest.approx(direct["precision"]) and ours["recall"] == pytest.approx(direct["recall"])
    assert 0 <= ours["precision"] <= 1 and 0 <= ours["recall"] <= 1


def test_misspelt_option_unknown_extractor_and_inception_without_weights_are_errors(mnist):
    x = mnist["test"][:100]
    with pytest.raises(ValueError, match="unknown torch-fidelity option.*'kid_subset'.*valid: .*kid_subset_size"):
        calculate(x, x, weights_path=mnist["weights"], kid_subset=10)
    with pytest.raises(ValueError, match="metrics \\['fdi'\\]: valid are isc, fid, kid, prc"):
        calculate(x, x, metrics=["fdi"], weights_path=mnist["weights"])
    with pytest.raises(ValueError, match="unknown feature extractor 'inception'; valid: classifier, inception-v3"):
        calculate(x, x, extractor="inception", weights_path=mnist["weights"])
    with pytest.raises(ValueError, match="feature_extractor_weights_path to a local copy of pt_inception"):
        calculate(x, x, extractor="inception-v3")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        calculate(x, x, extractor="inception-v3", weights_path="/nonexistent/pt_inception.pth")


def test_real_statistics_are_computed_once_and_reused_from_storage(mnist, local_storage, tmp_path):
    real, fake = mnist["test"][:1000], mnist["test"][1000:2000]
    name = stats_cache_name("mnist", "0123456789abcdef")
    with storage_cache(local_storage, name, str(tmp_path / "node1")) as root:
        first = calculate(fake, real, metrics=["fid"], weights_path=mnist["weights"], real_cache_name=name,
                          cache_root=root)
    stored = local_storage.ls("evaluators", "stats")
    assert stored and all(n.startswith(name) for n in stored)
    # Another node (empty local cache) reads the real statistics from storage instead of the images:
    # given different "real" images under the same cache name, it still gets the cached answer.
    with storage_cache(local_storage, name, str(tmp_path / "node2")) as root:
        again = calculate(fake, np.zeros_like(real), metrics=["fid"], weights_path=mnist["weights"],
                          real_cache_name=name, cache_root=root)
    assert again["fid"] == pytest.approx(first["fid"], rel=1e-12)


def test_a_cache_file_that_is_not_plain_data_is_refused(local_storage, tmp_path):
    import pickle

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    buf = pickle.dumps({"mu": Evil()})
    local_storage.write_bytes(buf, "evaluators", "stats", "x-n1-classifier-h-gansweep-classifier-stat-fid.pt")
    with pytest.raises(ValueError, match="refusing to load"):
        with storage_cache(local_storage, "x-n1-classifier-h", str(tmp_path / "node")):
            pass
    assert not list((tmp_path / "node").iterdir())


def test_evaluator_train_cli_refuses_bad_input_before_any_compute(local_storage):
    from typer.testing import CliRunner

    from flows.cli import app

    res = CliRunner().invoke(app, ["evaluator", "train", "cifar10", "--storage", local_storage.url])
    out = " ".join(res.output.split())  # rich wraps long lines
    assert res.exit_code == 2 and "no in-domain classifier for dataset 'cifar10'; valid: fashion-mnist, mnist" in out
    res = CliRunner().invoke(app, ["evaluator", "train", "mnist", "--storage", local_storage.url])
    out = " ".join(res.output.split())
    assert res.exit_code == 2 and "upload it first: gansweep data upload mnist" in out
