"""One MNIST classifier per test run, shared by the evaluation tests (training it costs ~30 s)."""
from __future__ import annotations

import functools
import tempfile

import torch

from gan_tasks.evaluation.classifier import TrainSpec, train_and_store
from gan_tasks.data.images import upload
from gan_tasks.data.storage import Storage
from tests.conftest import DATA

# A third of MNIST for two epochs (~30 s on one core): 98.5 % test accuracy, IS 9.5 on real digits.
# The >= 99 % claim of the full run (`gansweep evaluator train mnist`) is checked with the CLI.
TEST_SPEC = TrainSpec(epochs=2, train_samples=20_000)


@functools.cache
def mnist_store() -> tuple[Storage, dict]:
    """A local storage holding uploaded MNIST and a trained classifier, and its metadata."""
    st = Storage.parse(tempfile.mkdtemp(prefix="gansweep-eval-"))
    upload(st, "mnist", str(DATA / "mnist"))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # small convolutions: one thread is faster than two fighting on a shared CPU
    try:
        return st, train_and_store(st, "mnist", TEST_SPEC)
    finally:
        torch.set_num_threads(threads)


def copy_classifier(src: Storage, dst: Storage, dataset: str = "mnist") -> None:
    for name in src.ls("evaluators", dataset):
        dst.write_bytes(src.read_bytes("evaluators", dataset, name), "evaluators", dataset, name)


def copy_dataset(src: Storage, dst: Storage, dataset: str = "mnist") -> None:
    """An uploaded dataset's current.json and its id's shards and manifest."""
    from gan_tasks.data.userdata import upload_id

    did = upload_id(src, dataset)
    for name in src.ls("datasets", dataset, did):
        dst.write_bytes(src.read_bytes("datasets", dataset, did, name), "datasets", dataset, did, name)
    dst.write_bytes(src.read_bytes("datasets", dataset, "current.json"), "datasets", dataset, "current.json")
