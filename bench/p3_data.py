"""P3 data: bytes read from S3 (botocore GetObject hook on the s3fs client) / dataset size, when every trial
of a sweep loads its data on one node: on a fresh node cache (first night), then with that cache (next
night). NaN on local storage (no object store to count).

Acceptance (tests/test_bench.py): `p3_data` <= 1.1 (the dataset is downloaded once however many trials
read it), `p3_data_next_night` < 0.01 (only the manifest is read again). Theoretical minimum: 1.0 and ~0.
"""
from __future__ import annotations

import tempfile

from bench.harness import Figure
from gan_tasks.config import TrialConfig
from gan_tasks.data.datasets import ensure_dataset, load_array
from gan_tasks.data.storage import Storage


class S3ReadCounter:
    """Bytes of every S3 GetObject body this process's s3fs client receives (botocore event hook)."""

    def __init__(self, storage: Storage):
        from fsspec.asyn import sync

        self.bytes = 0
        fs = storage.fs
        client = sync(fs.loop, fs.set_session)
        client.meta.events.register("after-call.s3.GetObject", self._count)

    def _count(self, parsed: dict, **_) -> None:
        self.bytes += int(parsed.get("ContentLength", 0))


def bench_data(storage: Storage, trials: list[TrialConfig]) -> list[Figure]:
    path = ensure_dataset(storage, trials[0].dataset.name, trials[0].dataset.params)
    if not storage.is_s3:
        return [Figure("p3_data", float("nan"), "P3 data ratio")]
    counter = S3ReadCounter(storage)
    size = storage.fs.size(storage.uri(*path))
    out = []
    with tempfile.TemporaryDirectory() as cache:
        for key, night in (("p3_data", ""), ("p3_data_next_night", " next night")):
            counter.bytes = 0
            for _ in trials:  # each trial reads its data as train.Trial does
                load_array(storage, path, cache)
            out.append(Figure(key, counter.bytes / size, f"P3 data ratio{night}"))
    return out
