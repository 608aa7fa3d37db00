"""P3 memory: two Ray actors on one node read every image of the same added dataset (`gansweep data add`)
as trials do (shards memory-mapped from the node cache, batches gathered by ShardedImages.take) and hold
it; their memory growth, from /proc/<pid>/smaps_rollup after both have read it all, against the size.

RSS counts a shared page once per process that maps it, so two readers of one mapped file show ~2x the
size however little memory they take; PSS splits each shared page between its sharers and USS counts
only private pages, so their sums over the two actors are what the node really spends.

Acceptance (tests/test_mapped_memory.py at 40 MB, tests/test_bench.py): `p3_mapped_pss_ratio` (sum of both
actors' PSS growth / dataset size) <= 1.5, well below the 2.0 of two private copies, from 40 MB on (each
actor's ~7 MB of batch buffers and allocator is a fixed cost). Theoretical minimum: 1.0
(one copy of the pages, in the page cache, shared) plus a batch buffer each; `p3_mapped_uss_mb` (private
growth of both) ~0 beyond those buffers. `python -m bench.p3_mapped_memory --mb 200` prints the figures.
"""
from __future__ import annotations

import argparse
import os
import tempfile

import numpy as np

from bench.harness import Figure
from gan_tasks.data.storage import Storage
from gan_tasks.data.userdata import open_split

SIDE = 64  # 3x64x64 RGB images, 12,288 bytes each
BATCH = 256


def rollup() -> dict[str, int]:
    """This process's Rss, Pss and USS (Private_Clean + Private_Dirty) in bytes."""
    kb = {}
    with open("/proc/self/smaps_rollup") as f:
        for line in f:
            parts = line.split()
            if len(parts) == 3 and parts[2] == "kB":
                kb[parts[0].rstrip(":")] = int(parts[1]) * 1024
    return {"rss": kb["Rss"], "pss": kb["Pss"], "uss": kb["Private_Clean"] + kb["Private_Dirty"]}


class Reader:
    """A trial's view of the dataset: open the split from the node cache, gather every batch, keep it mapped."""

    def __init__(self, url: str, endpoint: str | None, name: str, did: str, cache: str):
        self.args, self.images, self.start = (url, endpoint, name, did, cache), None, rollup()

    def read_all(self) -> int:
        url, endpoint, name, did, cache = self.args
        self.images, _ = open_split(Storage.parse(url, endpoint), name, did, cache_dir=cache)
        total = 0
        for i in range(0, len(self.images), BATCH):
            total += int(self.images.take(np.arange(i, min(i + BATCH, len(self.images))))[:, 0, 0, 0].sum())
        return total

    def growth(self) -> dict[str, int]:
        now = rollup()
        return {k: now[k] - self.start[k] for k in now}


def synthetic_dataset(storage: Storage, mb: float, name: str = "bench-mapped") -> tuple[str, int]:
    """(id, bytes) of a dataset of seeded noise images, mb megabytes of uint8, added through data add."""
    from PIL import Image

    from gan_tasks.data.ingest import IngestOptions, add

    n = max(1, int(mb * 1e6 / (3 * SIDE * SIDE)))
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as folder:
        for i in range(n):
            Image.fromarray(rng.integers(0, 256, (SIDE, SIDE, 3), dtype=np.uint8)).save(f"{folder}/{i:06d}.png",
                                                                                       compress_level=0)
        m = add(storage, name, folder, IngestOptions(size=SIDE, mode="RGB", crop="none", max_bytes=1 << 40))
    return m["id"], m["splits"]["train"]["count"] * 3 * SIDE * SIDE


def bench_mapped_memory(mb: float) -> list[Figure]:
    """Two actors (num_cpus 0: beside whatever runs) in the running Ray session, one node cache; the dataset
    in a local temporary storage (what is measured is the node's memory, not the object store)."""
    import ray

    actor = ray.remote(num_cpus=0)(Reader)
    with tempfile.TemporaryDirectory() as tmp:
        storage, cache = Storage.parse(os.path.join(tmp, "store")), os.path.join(tmp, "cache")
        did, size = synthetic_dataset(storage, mb)
        readers = [actor.remote(storage.url, storage.endpoint_url, "bench-mapped", did, cache) for _ in range(2)]
        sums = [ray.get(r.read_all.remote()) for r in readers]  # one after the other: the second finds the cache
        assert sums[0] == sums[1], "both actors read the same images"
        grown = ray.get([r.growth.remote() for r in readers])
        for r in readers:
            ray.kill(r)
    total = {k: sum(g[k] for g in grown) for k in ("rss", "pss", "uss")}
    label = f"2 actors, {size / 1e6:.0f} MB dataset"
    return [Figure("p3_mapped_mb", size / 1e6, "P3 mapped dataset size MB"),
            Figure("p3_mapped_pss_ratio", total["pss"] / size,
                   f"P3 mapped: sum of PSS growth / dataset size ({label})"),
            Figure("p3_mapped_rss_ratio", total["rss"] / size,
                   f"P3 mapped: sum of RSS growth / dataset size ({label}; counts shared pages twice)"),
            Figure("p3_mapped_uss_mb", total["uss"] / 1e6, f"P3 mapped: sum of USS (private) growth MB ({label})")]


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--mb", type=float, default=200.0)
    a = p.parse_args()
    from flows.actors.session import ray_session

    with ray_session(log_to_driver=False):
        for f in bench_mapped_memory(a.mb):
            print(f"{f.key} = {f.value:.3f}  ({f.label})")
