"""What a trial reads of an added dataset (issue 28, P7): index.json (the manifest less its per-file lists),
once per node, never the manifest; the driver checks the manifest against the id once. Counted by a real S3
endpoint (moto, bench/p7_nodes.py's counting server) over two trial processes sharing one node cache."""
from __future__ import annotations

import os
import subprocess
import sys
import uuid

import boto3
import pytest

from bench.p7_nodes import CountingS3
from gan_tasks.data.ingest import add
from gan_tasks.data.storage import Storage
from gan_tasks.data.userdata import INDEX, manifest_path, open_split, read_index
from gan_tasks.errors import BadInput
from tests.test_ingest import GREY28, N, write_pngs

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# One process as a trial reads its data (open_split) and its evaluation the params; "driver": the flow's check.
READ = ("import sys; from gan_tasks.data.storage import Storage; from gan_tasks.data.userdata import open_split, "
        "read_index; st = Storage.parse(sys.argv[1], sys.argv[2]); check = sys.argv[4] == 'driver'; "
        "check or open_split(st, 'digits', sys.argv[3]); read_index(st, 'digits', sys.argv[3], check=check); "
        "read_index(st, 'digits', sys.argv[3], check=check)['params']")


@pytest.fixture(scope="module")
def digits_arrays():
    """The first N MNIST training images and labels."""
    from gan_tasks.data.images import SOURCES
    from tests.conftest import DATA

    arrs = SOURCES["mnist"].read(str(DATA / "mnist"))
    return arrs["train"][:N, 0], arrs["train_labels"][:N]


@pytest.fixture(scope="module")
def counted(tmp_path_factory, digits_arrays):
    """(counting S3 server, storage on it, the id of `digits` added there)."""
    x, y = digits_arrays
    png = tmp_path_factory.mktemp("png")
    write_pngs(png, x, y)
    s3 = CountingS3()
    bucket = f"index-{uuid.uuid4().hex[:8]}"
    boto3.client("s3", endpoint_url=s3.url, region_name="us-east-1").create_bucket(Bucket=bucket)
    st = Storage.parse(f"s3://{bucket}/gansweep", endpoint_url=s3.url)
    did = add(st, "digits", str(png), GREY28)["id"]
    yield s3, st, did
    s3.server.shutdown()


def _gets(s3: CountingS3, st: Storage, did: str, who: str, cache) -> dict[str, int]:
    """Run one process as `who` with node cache `cache`; GETs per object name under datasets/ it made."""
    s3.requests.clear()
    env = {**os.environ, "GANSWEEP_CACHE": str(cache), "AWS_SDK_UA_APP_ID": who, "PYTHONPATH": ROOT}
    subprocess.run([sys.executable, "-c", READ, st.url, st.endpoint_url, did, who], check=True, env=env, timeout=300)
    return {name: len(sizes) for (w, name), sizes in s3.requests.items() if w == who}


def test_two_trials_on_a_node_read_the_index_once_and_never_the_manifest(counted, tmp_path):
    s3, st, did = counted
    first = _gets(s3, st, did, "node", tmp_path / "node")
    assert first.get(INDEX) == 1 and "manifest.json" not in first
    assert first["train-00000.npy"] == first["train_labels.npy"] == 1
    assert _gets(s3, st, did, "node", tmp_path / "node") == {}  # the second trial: all from the node cache
    assert _gets(s3, st, did, "driver", tmp_path / "driver") == {"manifest.json": 1, INDEX: 1}  # checked once


def test_a_dataset_from_before_the_index_is_read_from_its_manifest_once_a_node(counted, tmp_path):
    s3, st, did = counted
    st.rm("datasets", "digits", did, INDEX)
    try:
        gets = [_gets(s3, st, did, "node", tmp_path / "node") for _ in range(2)]
        assert gets[0]["manifest.json"] == 1 and gets[1] == {}
    finally:  # the driver's check writes it back, as a sweep's flow does before its trials start
        read_index(st, "digits", did, check=True, cache_dir=str(tmp_path / "driver"))
    assert st.exists("datasets", "digits", did, INDEX)


def test_a_manifest_that_does_not_hash_to_its_id_is_refused_and_a_damaged_index_is_not_trusted(
        tmp_path, digits_arrays):
    x, y = digits_arrays
    write_pngs(tmp_path / "png", x[:20], y[:20])
    st = Storage.parse(str(tmp_path / "store"))
    m = add(st, "digits", str(tmp_path / "png"), GREY28)
    manifest = os.path.join(st.url, *manifest_path("digits", m["id"]))
    text = open(manifest).read()
    open(manifest, "w").write(text.replace('"mode": "L"', '"mode": "RGB"'))
    with pytest.raises(BadInput, match="manifest.json is corrupt: its hash is"):
        read_index(st, "digits", m["id"], check=True, cache_dir=str(tmp_path / "cache"))
    open(manifest, "w").write(text)
    index = os.path.join(st.url, "datasets", "digits", m["id"], INDEX)
    with open(index, "r+b") as f:  # one character more in a shard's sha256: the index no longer checks out
        blob = f.read().replace(b'"sha256": "', b'"sha256": "0', 1)
        f.seek(0)
        f.write(blob)
    images, _ = open_split(st, "digits", m["id"], cache_dir=str(tmp_path / "cache"))  # from the manifest
    assert len(images) == m["splits"]["train"]["count"]
