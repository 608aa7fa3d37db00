"""Storage.ls(prefix=): one trial's files of a folder holding every trial's (issue 28: a trial's start listed the
whole metrics folder, O(trials) names per trial), the same on a local folder and on S3."""
import pytest

from gan_tasks.data.storage import _PARTIAL


@pytest.fixture(params=["local", "s3"])
def storage(request):
    return request.getfixturevalue(f"{request.param}_storage")


def test_prefix_lists_one_trials_files_and_no_partial_write(storage):
    for name in ("aa11-000000001.parquet", "aa11-000000050.parquet", "aa12-000000001.parquet", "b0.parquet"):
        storage.write_bytes(b"x", "sweeps", "s", "metrics", name)
    storage.write_bytes(b"x", "sweeps", "s", "checkpoints", "aa11", "step-000000010.pt")
    if not storage.is_s3:  # a write a kill cut short: never an object
        (storage.fs.open(storage.uri("sweeps", "s", "metrics", f".aa11-000000099.parquet{_PARTIAL}x"), "wb")
         .close())
    assert storage.ls("sweeps", "s", "metrics", prefix="aa11-") == ["aa11-000000001.parquet", "aa11-000000050.parquet"]
    assert storage.ls("sweeps", "s", "metrics", prefix="aa1") == ["aa11-000000001.parquet", "aa11-000000050.parquet",
                                                                  "aa12-000000001.parquet"]
    assert storage.ls("sweeps", "s", "metrics") == ["aa11-000000001.parquet", "aa11-000000050.parquet",
                                                    "aa12-000000001.parquet", "b0.parquet"]
    assert storage.ls("sweeps", "s", "metrics", prefix="zz") == []
    assert storage.ls("sweeps", "s", "nothing-here", prefix="aa") == []
    assert storage.ls("sweeps", "s") == ["checkpoints", "metrics"]  # folders too, one level only
    assert storage.ls("sweeps", "s", "checkpoints", prefix="aa") == ["aa11"]
    if not storage.is_s3:
        assert storage.remove_partials("sweeps", "s", "metrics", prefix="aa12-") == 0
        assert storage.remove_partials("sweeps", "s", "metrics", prefix="aa11-") == 1
