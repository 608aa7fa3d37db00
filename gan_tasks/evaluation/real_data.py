"""What the report shows of the data a sweep trained on: the dataset's name, id, image count, shape and
classes, and a grid of its real images beside the generated ones (image datasets only)."""
from __future__ import annotations

import numpy as np

from gan_tasks.data.datasets import dataset_spec
from gan_tasks.data.storage import Storage
from gan_tasks.data.userdata import read_index, upload_id
from gan_tasks.evaluation.provenance import reference_indices

SHOWN = 64  # real images in the grid: as many as a trial's generated grid


def describe(storage: Storage, entry: dict) -> tuple[dict[str, str], np.ndarray | None]:
    """({field: text} of the config's dataset entry, up to SHOWN real training images in [-1, 1] (N, C, H, W)
    drawn by a seeded random subset, or None where there are none to show (2-D points, two domains, not
    in storage)."""
    name, did = entry["name"], entry.get("id")
    spec = dataset_spec(entry)
    if not spec.sharded:  # 2-D points, two domains
        return {"name": name, "kind": spec.kind}, None
    try:
        did = did or upload_id(storage, name)  # a built-in upload: its current (only) id
        m = read_index(storage, name, did)
        counts = {s: v["count"] for s, v in m["splits"].items()}
        shards = m["splits"]["train"]["shards"]
        files = [("datasets", name, did, e["file"]) for e in shards]
        real = _rows(storage, files, [e["shape"][0] for e in shards], counts["train"])
        classes = len(m["classes"])
    except (FileNotFoundError, ValueError):  # not uploaded (read_index's BadInput)
        return {"name": name, "kind": spec.kind, "images": "not in storage"}, None
    info = {"name": name, "id": did or "-", "images": " / ".join(f"{s} {n:,}" for s, n in counts.items()),
            "shape": "x".join(map(str, real.shape[1:])), "classes": str(classes) if classes else "none"}
    return info, real.astype(np.float32) / 127.5 - 1.0


def _rows(storage: Storage, files: list[tuple[str, ...]], lengths: list[int], n: int) -> np.ndarray:
    """The SHOWN images of a seeded random subset of the n training images, stored as .npy files of
    `lengths` rows one after another, read by byte ranges (each file's header, then each image): the
    driver reads ~100 KB, not the dataset (which the nodes' trials download each for themselves: issue 28,
    bench/p7_nodes.py)."""
    import io

    from numpy.lib import format as npy

    idx = reference_indices(n, SHOWN, 0)
    starts = np.cumsum([0] + lengths)
    which = np.searchsorted(starts, idx, side="right") - 1
    urls, begin, end, shapes = [], [], [], {}
    for f, i in zip(which, idx):
        if f not in shapes:  # the header: magic, version, then shape and dtype; the data follows it
            head = io.BytesIO(storage.fs.cat_file(storage.uri(*files[f]), start=0, end=4096))
            version = npy.read_magic(head)
            shape, _, dtype = (npy.read_array_header_1_0 if version == (1, 0) else npy.read_array_header_2_0)(head)
            shapes[f] = (head.tell(), shape[1:], dtype)
        offset, row_shape, dtype = shapes[f]
        size = int(np.prod(row_shape)) * dtype.itemsize
        urls.append(storage.uri(*files[f]))
        begin.append(offset + int(i - starts[f]) * size)
        end.append(begin[-1] + size)
    blobs = storage.fs.cat_ranges(urls, begin, end)
    return np.stack([np.frombuffer(b, shapes[f][2]).reshape(shapes[f][1]) for b, f in zip(blobs, which)])
