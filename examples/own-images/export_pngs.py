"""Write MNIST or Fashion-MNIST (the canonical IDX files) as a folder of PNGs, one sub-folder per class:
what a researcher's own image folder looks like. `python export_pngs.py ../shared/data/mnist OUT --n 3000`."""
from __future__ import annotations

import argparse
import os

from PIL import Image

from gan_tasks.data.images import SOURCES


def export(idx_folder: str, out: str, n: int, name: str = "mnist") -> int:
    arrays = SOURCES[name].read(idx_folder)
    images, labels = arrays["train"][:n, 0], arrays["train_labels"][:n]
    for i, (img, label) in enumerate(zip(images, labels)):
        os.makedirs(os.path.join(out, str(label)), exist_ok=True)
        Image.fromarray(img).save(os.path.join(out, str(label), f"{i:05d}.png"))
    return len(images)


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("idx_folder")
    p.add_argument("out")
    p.add_argument("--n", type=int, default=3000, help="the first N training images")
    p.add_argument("--dataset", default="mnist", choices=["mnist", "fashion-mnist"])
    a = p.parse_args()
    print(f"wrote {export(a.idx_folder, a.out, a.n, a.dataset)} PNGs to {a.out}")
