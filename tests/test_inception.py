"""The inception-v3 extractor end to end, without the real weights (no internet on CI nodes).

torch-fidelity's own Inception class (FeatureExtractorInceptionV3, behind "inception-v3-compat")
is built with random weights from a fixed seed and its state_dict saved: the file format
torch-fidelity loads for `feature_extractor_weights_path` (torch.load, then a strict
load_state_dict into that class). Random weights make no claim about image quality: these tests
are about the plumbing (our typed wrapper, grey -> RGB, the real-data cache, the evaluation
config, the extractor and weights hash in the rows) and exact equality with torch-fidelity's
direct call. Nothing of ours is mocked.

Inception sees 299x299 images (~0.2 s an image on one shared CPU core), so the sets are small.
"""
import ctypes
import glob
import hashlib
import json
import os

import numpy as np
import pytest
import torch
import torch_fidelity
from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

from gan_tasks.config import expand_grid, parse_config
from gan_tasks.data.userdata import open_split
from gan_tasks.evaluation.evaluate import evaluate_trial
from gan_tasks.evaluation.fidelity import ImageSet, calculate
from gan_tasks.evaluation.provenance import reference_key
from gan_tasks.data.images import upload
from gan_tasks.data.storage import Storage
from gan_tasks.training.trial import run_trial
from tests.conftest import DATA

pytestmark = pytest.mark.slow

N = 16  # images a set: enough for a finite FID / KID / precision-recall, cheap enough at 299x299


class _RandomInception(FeatureExtractorInceptionV3):
    """torch-fidelity's class, left with its random initialisation instead of loading weights."""

    def load_state_dict(self, state_dict, strict=True, assign=False):  # noqa: ARG002 - the constructor's load
        return None


def write_random_inception_weights(path: str, seed: int = 0) -> str:
    """A state_dict of FeatureExtractorInceptionV3 with seeded random weights (He-normal convolutions,
    so activations keep their scale through ~20 layers; PyTorch's default init shrinks them to 1e-8)."""
    empty = f"{path}.empty"
    torch.save({}, empty)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = _RandomInception("inception-v3-compat", ["2048"], feature_extractor_weights_path=empty)
        for m in net.modules():
            if isinstance(m, torch.nn.Conv2d):
                torch.nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
    os.remove(empty)
    torch.save(net.state_dict(), path)
    return path


def sha16(path: str) -> str:
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()[:16]


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """One torch thread and one OpenBLAS thread, as in a Ray actor (OMP_NUM_THREADS=1). On 2 cores
    shared with other work, two threads fight: Inception runs 2x and FID's eigvals of a 2048x2048
    matrix ~10x slower (5 s on one thread, ~50 s on two)."""
    libs = glob.glob(os.path.join(os.path.dirname(np.__file__), "..", "numpy.libs", "libscipy_openblas64_*.so"))
    blas = ctypes.CDLL(libs[0]) if libs else None
    if blas is not None and not hasattr(blas, "scipy_openblas_set_num_threads64_"):
        blas = None  # another numpy build: only slower
    torch_before = torch.get_num_threads()
    blas_before = blas.scipy_openblas_get_num_threads64_() if blas is not None else None
    torch.set_num_threads(1)
    if blas is not None:
        blas.scipy_openblas_set_num_threads64_(1)
    yield
    torch.set_num_threads(torch_before)
    if blas is not None:
        blas.scipy_openblas_set_num_threads64_(blas_before)


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    root = tmp_path_factory.mktemp("inception")
    weights = write_random_inception_weights(str(root / "pt_inception-random.pth"))
    st = Storage.parse(str(root / "store"))
    upload(st, "mnist", str(DATA / "mnist"))
    return {"root": root, "weights": weights, "storage": st,
            "test": open_split(st, "mnist", None, "test")[0].array()}


def noisy(images: np.ndarray, sigma: float, seed: int = 0) -> np.ndarray:
    x = images.astype(np.float32) / 255 + sigma * np.random.default_rng(seed).standard_normal(images.shape)
    return (np.clip(x, 0, 1) * 255).round().astype(np.uint8)


def test_weights_file_is_what_torch_fidelity_loads(env):
    sd = torch.load(env["weights"], weights_only=True)  # plain tensors, like pt_inception-2015-12-05
    net = FeatureExtractorInceptionV3("inception-v3-compat", ["2048"], feature_extractor_weights_path=env["weights"])
    assert set(sd) == set(net.state_dict())  # torch-fidelity's strict load_state_dict took it
    assert all(torch.equal(sd[k], v) for k, v in net.state_dict().items())
    (env["root"] / "again").mkdir()  # torch.save names the archive's records after the file: same name
    again = write_random_inception_weights(str(env["root"] / "again" / os.path.basename(env["weights"])))
    assert sha16(again) == sha16(env["weights"])  # the seed fixes the file, so its hash


def test_inception_fid_self_zero_noised_positive_and_equal_to_direct_call(env):
    real = env["test"][:N]  # grey (N, 1, 28, 28) uint8: repeated to RGB for Inception
    fake = noisy(env["test"][N:2 * N], 0.3)
    kw = {"extractor": "inception-v3", "weights_path": env["weights"], "real_cache_name": "mnist-real",
          "cache_root": str(env["root"] / "fidelity-cache"), "kid_subsets": 10}
    self_ = calculate(real, real, **kw)  # computes the real features and caches them
    ours = calculate(fake, real, **kw)  # reads the real features from that cache
    direct = torch_fidelity.calculate_metrics(
        input1=ImageSet(fake, rgb=True), input2=ImageSet(real, rgb=True), isc=True, fid=True, kid=True, prc=True,
        feature_extractor="inception-v3-compat", feature_extractor_weights_path=env["weights"], cuda=False,
        verbose=False, cache=False, kid_subsets=10, kid_subset_size=N, save_cpu_ram=True)
    print(f"inception-v3 (random weights), {N} images: FID self {self_['fid']:.3g}, "
          f"noised {ours['fid']:.6g}; KID self {self_['kid']:.3g}, noised {ours['kid']:.3g}")
    assert ours["fid"] > 0 and abs(self_["fid"]) < 1e-4 * ours["fid"], (self_, ours)
    assert self_["precision"] == self_["recall"] == 1.0  # every image is its own nearest neighbour
    assert ours["fid"] == pytest.approx(direct["frechet_inception_distance"], rel=1e-9)
    assert ours["inception_score"] == pytest.approx(direct["inception_score_mean"], rel=1e-9)
    assert ours["kid"] == pytest.approx(direct["kernel_inception_distance_mean"], rel=1e-9)
    assert ours["precision"] == pytest.approx(direct["precision"]) and ours["recall"] == pytest.approx(direct["recall"])
    assert any(n.startswith("mnist-real") for n in os.listdir(env["root"] / "fidelity-cache"))


def test_evaluation_config_with_inception_records_extractor_and_weights_hash(env):
    """evaluation: {feature_extractor: inception-v3, feature_extractor_weights_path: ...} through
    evaluate_trial on a dcgan-28 trained a few steps on the uploaded MNIST. FID on N < 2048 samples is
    refused at validation (KID instead); the rows record how each value was made."""
    st = env["storage"]
    config = {
        "name": "mnist-inception", "dataset": "mnist", "model": "dcgan-28",
        "grid": {"loss": ["non-saturating"], "optimizer": ["adam"], "seed": [0]},
        "train": {"steps": 4, "batch_size": 16, "z_dim": 16, "log_every": 2, "checkpoint_every": 4},
        "evaluation": {"feature_extractor": "inception-v3", "feature_extractor_weights_path": env["weights"],
                       "fidelity_samples": N}}
    with pytest.raises(ValueError, match=r"fidelity_samples: 16: FID needs at least .*2048.* use KID"):
        parse_config(config)
    cfg = parse_config({**config, "evaluation": {**config["evaluation"], "image_metrics": ["isc", "kid", "prc"]}})
    trial = expand_grid(cfg)[0]
    assert run_trial(trial, st, "inc")["status"] == "completed"
    rows = evaluate_trial(trial, st, "inc", cfg.evaluation)
    h = sha16(env["weights"])
    assert {r["metric"] for r in rows} == {"inception_score", "inception_score_std", "kid", "kid_std",
                                           "precision", "recall", "f_score"}
    assert all(r["extractor"] == "inception-v3" and r["extractor_hash"] == h and r["step"] == 4 for r in rows)
    v = {r["metric"]: r["value"] for r in rows}
    assert v["inception_score"] >= 1 and 0 <= v["precision"] <= 1 and 0 <= v["recall"] <= 1
    stored = st.read_table("sweeps", "inc", "evaluations").to_pandas()
    assert (stored.extractor == "inception-v3").all() and (stored.extractor_hash == h).all()
    kid = json.loads(stored.provenance[stored.metric == "kid"].iloc[0])
    assert kid["weights_hash"] == h and kid["feature_layer"] == "2048" and kid["n_real"] == kid["n_fake"] == N
    assert "grey -> RGB" in kid["resize"] and "299x299" in kid["resize"]
    assert json.loads(stored.provenance[stored.metric == "inception_score"].iloc[0])["n_real"] is None
    # The real-image statistics are cached in storage under a name that is their provenance's hash.
    assert any(n.startswith(f"mnist-{reference_key({**kid, 'feature_layer': {'kid': '2048', 'prc': '2048'}})}")
               for n in st.ls("evaluators", "stats"))
