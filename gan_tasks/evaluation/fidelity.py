"""Image metrics through torch-fidelity: one typed entry point, where a misspelt option is an error.

torch-fidelity's calculate_metrics(**kwargs) silently ignores a key it does not know
("fdi=True" computes nothing); `calculate` checks every option against torch_fidelity.defaults
first. Real-data features are cached by torch-fidelity under a cache name that is the hash of their
provenance (gan_tasks/evaluation/provenance.py: data, sample, extractor, layer, resizing), and that
cache lives in object storage (evaluators/stats/), so a sweep of 50 trials computes them once and the
next night reuses them; any change to what they depend on is a new name.
"""
from __future__ import annotations

import contextlib
import os
from typing import Iterator, Sequence

import numpy as np
import torch
import torch_fidelity
from torch_fidelity.defaults import DEFAULTS

# The options' names and config-time checks are torch-free, in gan_tasks/config/eval_options.py; re-exported here.
from gan_tasks.config.eval_options import (EXTRACTORS, FIDELITY_NAME, METRIC_FLAGS, ExtractorSpec,  # noqa: F401
                               check_dataset_extractor, check_eval)
from gan_tasks.evaluation.classifier import SIDE as CLASSIFIER_SIDE, ensure_registered, to_uint8
from gan_tasks.evaluation.extractors import fidelity_extractor  # a plugin's extractor, registered on first use
from gan_tasks.data.storage import Storage, node_cache, write_local

# torch-fidelity's result keys -> the metric names in our evaluations table.
RESULT_NAMES = {
    torch_fidelity.KEY_METRIC_ISC_MEAN: "inception_score", torch_fidelity.KEY_METRIC_ISC_STD: "inception_score_std",
    torch_fidelity.KEY_METRIC_FID: "fid",
    torch_fidelity.KEY_METRIC_KID_MEAN: "kid", torch_fidelity.KEY_METRIC_KID_STD: "kid_std",
    torch_fidelity.KEY_METRIC_PRECISION: "precision", torch_fidelity.KEY_METRIC_RECALL: "recall",
    torch_fidelity.KEY_METRIC_F_SCORE: "f_score",
}
_OURS = {"input1", "input2", "isc", "fid", "kid", "prc", "feature_extractor", "feature_extractor_weights_path",
         "cuda", "verbose", "cache_root", "input2_cache_name", "input1_model_z_size", "input1_model_num_samples"}


class ImageSet(torch.utils.data.Dataset):
    """uint8 images (N, C, H, W) as torch-fidelity reads them; grey repeated to RGB if asked."""

    def __init__(self, images: np.ndarray | torch.Tensor, rgb: bool = False):
        x = torch.as_tensor(images)
        x = x if x.dtype == torch.uint8 else to_uint8(x)  # floats are generator outputs in [-1, 1]
        self.x = x.expand(-1, 3, -1, -1) if rgb and x.shape[1] == 1 else x

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int) -> torch.Tensor:
        return self.x[i]


class Uint8Generator(torch.nn.Module):
    """A tanh generator as torch-fidelity wants one: z -> uint8 images."""

    def __init__(self, g: torch.nn.Module, rgb: bool = False):
        super().__init__()
        self.g, self.rgb = g, rgb

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = to_uint8(self.g(z))
        return x.expand(-1, 3, -1, -1) if self.rgb and x.shape[1] == 1 else x


def feature_layers(extractor: str) -> dict[str, str]:
    """torch-fidelity's metric flag -> the extractor's feature layer it reads (its defaults, which calculate uses)."""
    from torch_fidelity.registry import FEATURE_EXTRACTORS_REGISTRY

    ensure_registered()
    cls = FEATURE_EXTRACTORS_REGISTRY[EXTRACTORS.get(extractor).fidelity_name]
    return {m: str(cls.get_default_feature_layer_for_metric(m)) for m in METRIC_FLAGS}


def input_chain(extractor: str, shape: tuple[int, ...]) -> list[str]:
    """What happens to a stored (C, H, W) uint8 image on its way into the extractor (generated images: the
    generator's [-1, 1] rounded to uint8 first)."""
    c, h, w = shape
    if extractor == "classifier":
        side = CLASSIFIER_SIDE
        return [] if (h, w) == (side, side) else [f"torch antialiased bilinear {h}x{w} -> {side}x{side}"]
    grey = ["grey -> RGB (channel repeated)"] if c == 1 and EXTRACTORS.get(extractor).rgb else []
    return grey + [f"torch-fidelity {EXTRACTORS.get(extractor).fidelity_name}: TF1-style bilinear {h}x{w} -> 299x299"]


def check_options(options: dict) -> None:
    unknown = sorted(set(options) - set(DEFAULTS))
    if unknown:
        raise ValueError(f"unknown torch-fidelity option(s) {', '.join(map(repr, unknown))}; "
                         f"valid: {', '.join(sorted(DEFAULTS))}")
    taken = sorted(set(options) & _OURS)
    if taken:
        raise ValueError(f"option(s) {', '.join(taken)} are set by gan_tasks.evaluation.fidelity.calculate's own arguments")


def calculate(fake: np.ndarray | torch.Tensor | torch.nn.Module, real: np.ndarray | torch.Tensor | None = None, *,
              metrics: Sequence[str] = METRIC_FLAGS, extractor: str = "classifier", weights_path: str | None = None,
              n_samples: int | None = None, z_dim: int | None = None, real_cache_name: str | None = None,
              cache_root: str | None = None, device: str = "cpu", **options) -> dict[str, float]:
    """IS / FID / KID / precision-recall of `fake` (images, or a generator with n_samples and z_dim)
    against `real` images. Returns {metric name: value}; options go to torch-fidelity, checked."""
    bad = sorted(set(metrics) - set(METRIC_FLAGS))
    if bad or not metrics:
        raise ValueError(f"metrics {list(metrics)}: valid are {', '.join(METRIC_FLAGS)} (at least one)")
    check_options(options)
    spec = EXTRACTORS.get(extractor)
    if not weights_path and spec.build is None:  # a plugin's extractor (spec.build) may bring its own weights
        raise ValueError(f"feature extractor {extractor!r} needs its weights: {spec.weights_hint}")
    if weights_path and not os.path.exists(weights_path):
        raise FileNotFoundError(f"feature_extractor_weights_path {weights_path!r} does not exist")
    if set(metrics) - {"isc"} and real is None:
        raise ValueError(f"metrics {sorted(set(metrics) - {'isc'})} compare with real images: pass `real`")
    ensure_registered()
    kw: dict = {"isc": "isc" in metrics, "fid": "fid" in metrics, "kid": "kid" in metrics, "prc": "prc" in metrics,
                "feature_extractor": fidelity_extractor(extractor), "feature_extractor_weights_path": weights_path,
                "cuda": device.startswith("cuda"), "verbose": False, "save_cpu_ram": True}
    if isinstance(fake, torch.nn.Module):
        if not (n_samples and z_dim):
            raise ValueError("a generator input needs n_samples and z_dim")
        kw.update(input1=torch_fidelity.GenerativeModelModuleWrapper(Uint8Generator(fake, spec.rgb), z_dim,
                                                                     "normal", 0),
                  input1_model_num_samples=n_samples)
        n_fake = n_samples
    else:
        kw["input1"] = ImageSet(fake, spec.rgb)
        n_fake = len(kw["input1"])
    if real is not None:
        kw["input2"] = ImageSet(real, spec.rgb)
        kw["kid_subset_size"] = min(DEFAULTS["kid_subset_size"], n_fake, len(kw["input2"]))
    if real_cache_name:
        kw.update(input2_cache_name=real_cache_name, cache_root=cache_root, cache=True)
    else:
        kw["cache"] = False
    out = torch_fidelity.calculate_metrics(**{**kw, **options})
    return {RESULT_NAMES[k]: float(v) for k, v in out.items() if k in RESULT_NAMES}


@contextlib.contextmanager
def storage_cache(storage: Storage, cache_name: str, local_root: str | None = None) -> Iterator[str]:
    """A local torch-fidelity cache_root mirrored with <storage>/evaluators/stats/: files of this
    cache name are downloaded before, and new ones uploaded after, the calculation."""
    local_root = local_root or node_cache("fidelity")
    os.makedirs(local_root, exist_ok=True)
    folder = ("evaluators", "stats")
    remote = storage.ls(*folder, prefix=f"{cache_name}-")
    for name in remote:
        if not os.path.exists(os.path.join(local_root, name)):
            write_local(os.path.join(local_root, name), storage.read_bytes(*folder, name),
                        check=lambda tmp, uri=storage.uri(*folder, name): _check_plain(tmp, uri))
    yield local_root
    for name in sorted(os.listdir(local_root)):
        if name.startswith(f"{cache_name}-") and name.endswith(".pt") and name not in remote:
            with open(os.path.join(local_root, name), "rb") as f:
                storage.write_bytes(f.read(), *folder, name)


def _check_plain(path: str, uri: str) -> None:
    """torch-fidelity loads its cache with weights_only=False (pickle): a file from shared storage
    must first prove to hold only tensors and numpy arrays, so it cannot run code on our nodes."""
    import numpy.core.multiarray as ma

    ok = [ma._reconstruct, np.ndarray, np.dtype, *{type(np.dtype(t)) for t in ("float32", "float64", "int64")}]
    try:
        with torch.serialization.safe_globals(ok):
            torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - anything that is not plain data is refused; write_local drops it
        raise ValueError(f"cached statistics {uri} hold more than tensors/arrays; refusing to load: {e}") from e


def stats_cache_name(dataset: str, reference_key: str) -> str:
    """Keyed by the reference statistics' provenance (provenance.reference_key): any change, a new name."""
    return f"{dataset}-{reference_key}"
