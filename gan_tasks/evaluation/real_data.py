"""What the report shows of the data a sweep trained on: the dataset's name, id, image count, shape and
classes, and a grid of its real images beside the generated ones (image datasets only)."""
from __future__ import annotations

import numpy as np

from gan_tasks.data.datasets import dataset_spec
from gan_tasks.data.storage import Storage
from gan_tasks.data.userdata import open_split, read_manifest, upload_id
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
        m = read_manifest(storage, name, did)
        counts = {s: v["count"] for s, v in m["splits"].items()}
        images, _ = open_split(storage, name, did)
        real = images.take(reference_indices(len(images), SHOWN, 0))
        classes = len(m["classes"])
    except (FileNotFoundError, ValueError):  # not uploaded (read_manifest's BadInput)
        return {"name": name, "kind": spec.kind, "images": "not in storage"}, None
    info = {"name": name, "id": did or "-", "images": " / ".join(f"{s} {n:,}" for s, n in counts.items()),
            "shape": "x".join(map(str, real.shape[1:])), "classes": str(classes) if classes else "none"}
    return info, real.astype(np.float32) / 127.5 - 1.0
