"""Shared fixtures: one Ray session for the whole test run, a real S3 endpoint (moto) over HTTP."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[2] / "shared"
DATA = SHARED / "data"
EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "gansweep-example"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session", autouse=True)
def _isolated_env(tmp_path_factory):
    """Fake AWS credentials (never real ones) and a private dataset cache for the test run."""
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "AKIATESTFAKEKEY12345")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "fakeSecretKeyForTestsOnly/abcdefghij")
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    os.environ["GANSWEEP_CACHE"] = str(tmp_path_factory.mktemp("cache"))
    yield


@pytest.fixture(scope="session")
def example_site(tmp_path_factory) -> Path:
    """examples/gansweep-example installed by pip into a throwaway target folder (put it on PYTHONPATH)."""
    target = tmp_path_factory.mktemp("site")
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                    "--target", str(target), str(EXAMPLE)], check=True, capture_output=True, timeout=300)
    return target


@pytest.fixture(scope="session")
def ray_session():
    """One local Ray for every test that needs it (ray.init costs ~9 s here)."""
    import ray

    if not ray.is_initialized():
        from flows.actors.session import start_local_ray

        start_local_ray(num_cpus=2, runtime_env={"env_vars": {"GANSWEEP_CACHE": os.environ["GANSWEEP_CACHE"]}})
    yield ray
    ray.shutdown()


@pytest.fixture(scope="session")
def s3_server():
    """moto's S3 server on 127.0.0.1: a real HTTP endpoint that s3fs and pyarrow talk to."""
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture
def s3_storage(s3_server):
    """A fresh bucket on the moto server, as a gan_tasks Storage."""
    import boto3

    from gan_tasks.data.storage import Storage

    bucket = f"test-{uuid.uuid4().hex[:10]}"
    boto3.client("s3", endpoint_url=s3_server, region_name="us-east-1").create_bucket(Bucket=bucket)
    return Storage.parse(f"s3://{bucket}/gansweep", endpoint_url=s3_server)


@pytest.fixture
def local_storage(tmp_path):
    from gan_tasks.data.storage import Storage

    return Storage.parse(str(tmp_path / "store"))


def tiny_config(**over) -> dict:
    """A sweep small enough for CI: 2 losses x 1 optimizer x 1 seed, 60 steps."""
    cfg = {"name": "tiny", "dataset": "ring-8", "model": "mlp",
           "grid": {"loss": ["non-saturating", "lsgan-011"], "optimizer": ["adam"], "seed": [0]},
           "train": {"steps": 60, "batch_size": 64, "log_every": 10, "checkpoint_every": 20},
           "evaluation": {"n_samples": 500}}
    for k, v in over.items():
        cfg[k] = {**cfg[k], **v} if isinstance(v, dict) and isinstance(cfg.get(k), dict) else v
    return cfg


@pytest.fixture(scope="session")
def prefect_harness():
    """A real (temporary, local) Prefect API for flows run inside the test process."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


@pytest.fixture(scope="session")
def loopback_cluster():
    """A Ray cluster on loopback (bench/loopback_cluster.py): a head without CPUs and 2 worker nodes of 1 CPU,
    labelled gpu_node and loopback_node_<i>, each with its own node cache. Tests that lose a node add one back."""
    from bench.loopback_cluster import LoopbackCluster

    with LoopbackCluster(workers=2, cpus=1) as cluster:
        yield cluster
