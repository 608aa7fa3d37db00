"""Your own images become a versioned dataset: `gansweep data add NAME SRC`.

SRC is a local folder or an fsspec URL (s3://bucket/prefix) of png / jpg / webp files, nested at will.
Each file is read and decoded once with Pillow (EXIF orientation applied, centre crop, LANCZOS resize to
size x size, mode L or RGB), in sorted relative-path order, into uint8 (N, C, H, W) shards of a fixed
number of images, written under a temporary prefix; then moved to <storage>/datasets/NAME/<id>/ and
manifest.json is published last. The id is a hash of the canonical manifest (every file's path, sha256
and label, the parameters, the library versions, every shard's sha256), so the same images give the same
id and one changed byte a new one. datasets/NAME/current.json names the id a sweep gets for `NAME`.
Layout of one id: {train,test}-NNNNN.npy shards, {train,test}_labels.npy (int16; -1 unlabelled), index.json
(the manifest less its per-file lists: what trials read, gan_tasks/data/userdata.py read_index), manifest.json.
"""
from __future__ import annotations

import hashlib
import io
import json
import posixpath
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass

import numpy as np

from gan_tasks.data.storage import Storage
from gan_tasks.data.userdata import INDEX, check_name, dataset_id, index_blob, index_of, set_current
from gan_tasks.errors import BadInput

EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp")
SHARD_IMAGES = 4096  # images per shard: 48 MB of 3x64x64, one download and one mmap each
FORMAT = 1  # the manifest's layout version
SHOW_BAD = 5  # bad files named in a refusal; the rest are counted


class IngestError(BadInput):
    """A refusal of the whole set (bad files, mixed sizes, over the limit): one line, nothing written."""


@dataclass(frozen=True)
class IngestOptions:
    size: int = 64
    mode: str = "RGB"  # "L" (grey, 1 channel) or "RGB" (3 channels)
    crop: str = "center"  # "center": the largest centred square; "none": images must be square and one size
    labels: str = "none"  # "subfolders": the first folder of each relative path is its class
    test_fraction: float = 0.0  # held out by a hash of the relative path; ignored with test_from
    skip_bad: bool = False  # skip undecodable / unreadable files, recorded in the manifest
    max_bytes: int = 8 << 30  # limits.dataset_bytes: a larger set is refused before anything is written
    shard_images: int = SHARD_IMAGES

    def check(self) -> None:
        for key, value, ok in (("mode", self.mode, ("L", "RGB")), ("crop", self.crop, ("center", "none")),
                               ("labels", self.labels, ("subfolders", "none"))):
            if value not in ok:
                raise IngestError(f"--{key} {value!r}: valid: {', '.join(ok)}")
        if not 1 <= self.size <= 4096:
            raise IngestError(f"--size {self.size}: between 1 and 4096 pixels")
        if not 0 <= self.test_fraction < 1:
            raise IngestError(f"--test-fraction {self.test_fraction}: in [0, 1)")

    @property
    def shape(self) -> tuple[int, int, int]:
        return (1 if self.mode == "L" else 3, self.size, self.size)


def source_fs(src: str, endpoint_url: str | None = None):
    """(filesystem, root path) of a local folder or an fsspec URL; s3 takes the storage's endpoint."""
    import fsspec

    opts = {"client_kwargs": {"endpoint_url": endpoint_url}} if endpoint_url and src.startswith("s3://") else {}
    fs, root = fsspec.core.url_to_fs(src, **opts)
    if not fs.isdir(root):
        raise IngestError(f"{src}: not a folder (or not reachable)")
    return fs, root.rstrip("/")


def list_images(fs, root: str) -> list[str]:
    """Relative paths of every entry named like an image (directories too: they fail to read), sorted."""
    rel = (posixpath.relpath(p, root) for p in fs.find(root, withdirs=True))
    return sorted(r for r in rel if r.lower().endswith(EXTENSIONS) and not r.startswith(".")
                  and "/." not in r)


def _label(rel: str, opts: IngestOptions) -> str | None:
    return rel.split("/", 1)[0] if opts.labels == "subfolders" and "/" in rel else None


def decode(blob: bytes, opts: IngestOptions) -> tuple[np.ndarray, tuple[int, int]]:
    """One file's bytes -> (C, size, size) uint8 and its size before cropping; raises on a bad file."""
    from PIL import Image, ImageOps

    with Image.open(io.BytesIO(blob)) as im:
        im.load()  # decode everything now: a truncated file fails here, not later
        im = ImageOps.exif_transpose(im).convert(opts.mode)
    w, h = im.size
    if opts.crop == "center":
        s = min(w, h)
        left, top = (w - s) // 2, (h - s) // 2
        im = im.crop((left, top, left + s, top + s))
    if im.size != (opts.size, opts.size):
        im = im.resize((opts.size, opts.size), Image.Resampling.LANCZOS)
    arr = np.asarray(im, dtype=np.uint8)
    return (arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1)), (w, h)


def _read_one(fs, root: str, rel: str, opts: IngestOptions):
    """(sha256, image, original size) or (None, why, None) for a file that cannot be read or decoded."""
    try:
        blob = fs.cat_file(f"{root}/{rel}")
    except Exception as e:  # noqa: BLE001 - unreadable: a directory, a dangling link, no permission
        return None, f"unreadable: {type(e).__name__}", None
    sha = hashlib.sha256(blob).hexdigest()
    try:
        img, wh = decode(blob, opts)
    except Exception as e:  # noqa: BLE001 - Pillow raises OSError, SyntaxError, ValueError, DecompressionBomb...
        return None, f"undecodable: {type(e).__name__}: {str(e)[:80]}", None
    return sha, img, wh


def _npy(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, arr)
    return buf.getvalue()


def _split(files: list[str], fraction: float) -> tuple[list[str], list[str]]:
    """The test split: the round(fraction * n) files first by sha256 of their relative path."""
    n_test = round(fraction * len(files))
    test = set(sorted(files, key=lambda r: hashlib.sha256(r.encode()).hexdigest())[:n_test])
    return [f for f in files if f not in test], [f for f in files if f in test]


class _Writer:
    """Decodes one split shard by shard into the temporary prefix; collects the manifest's entries."""

    def __init__(self, storage: Storage, tmp: tuple[str, ...], opts: IngestOptions):
        self.storage, self.tmp, self.opts = storage, tmp, opts
        self.bad: list[dict] = []
        self.sizes: set[tuple[int, int]] = set()

    def split(self, split: str, fs, root: str, files: list[str], classes: list[str]) -> dict:
        entries, shards, labels = [], [], []
        with ThreadPoolExecutor(max_workers=8) as pool:
            for start in range(0, len(files), self.opts.shard_images):
                chunk = files[start:start + self.opts.shard_images]
                images = []
                for rel, (sha, img, wh) in zip(chunk, pool.map(lambda r: _read_one(fs, root, r, self.opts), chunk)):
                    if sha is None:
                        self.bad.append({"path": f"{split}:{rel}", "why": img})
                        continue
                    self.sizes.add(wh)
                    label = _label(rel, self.opts)
                    entries.append({"path": rel, "sha256": sha, "label": label})
                    labels.append(classes.index(label) if label is not None else -1)
                    images.append(img)
                if images:
                    shards.append(self._write(f"{split}-{len(shards):05d}.npy", np.stack(images)))
        label_file = self._write(f"{split}_labels.npy", np.asarray(labels, np.int16))
        return {"count": len(entries), "files": entries, "shards": shards, "labels": label_file}

    def arrays(self, split: str, images: np.ndarray, labels: np.ndarray) -> dict:
        """A split already decoded (a built-in's canonical files, gansweep data upload) as the same shards."""
        n = self.opts.shard_images
        shards = [self._write(f"{split}-{i // n:05d}.npy", np.ascontiguousarray(images[i:i + n]))
                  for i in range(0, len(images), n)]
        return {"count": len(images), "files": [], "shards": shards,
                "labels": self._write(f"{split}_labels.npy", np.asarray(labels, np.int16))}

    def _write(self, name: str, arr: np.ndarray) -> dict:
        blob = _npy(arr)
        self.storage.write_bytes(blob, *self.tmp, name)
        return {"file": name, "sha256": hashlib.sha256(blob).hexdigest(), "shape": list(arr.shape)}


def _refuse_bad(bad: list[dict], what: str, hint: str) -> None:
    if bad:
        shown = ", ".join(b["path"].split(":", 1)[-1] for b in bad[:SHOW_BAD])
        more = f" and {len(bad) - SHOW_BAD} more" if len(bad) > SHOW_BAD else ""
        raise IngestError(f"{len(bad)} {what}: {shown}{more}; {hint}")


def add(storage: Storage, name: str, src: str, opts: IngestOptions, test_from: str | None = None,
        endpoint_url: str | None = None) -> dict:
    """Ingest SRC as dataset NAME; returns its manifest (already published and made current)."""
    import PIL

    check_name(name)
    opts.check()
    fs, root = source_fs(src, endpoint_url)
    files = list_images(fs, root)
    if not files:
        raise IngestError(f"{src}: no {', '.join(EXTENSIONS)} files")
    if test_from:
        fs_t, root_t = source_fs(test_from, endpoint_url)
        train, test = files, list_images(fs_t, root_t)
    else:
        fs_t, root_t = fs, root
        train, test = _split(files, opts.test_fraction)
    if opts.labels == "subfolders":
        loose = [{"path": r} for r in train + test if "/" not in r]
        _refuse_bad(loose, "file(s) not in a class sub-folder", "with --labels subfolders each image sits in "
                                                               "SRC/<class>/...")
    classes = sorted({_label(r, opts) for r in train} - {None})
    stray = sorted({_label(r, opts) for r in test} - set(classes) - {None})
    if stray:
        raise IngestError(f"--test-from has classes the training images lack: {', '.join(stray[:SHOW_BAD])}")
    n_bytes = (len(train) + len(test)) * int(np.prod(opts.shape))
    if n_bytes > opts.max_bytes:
        raise IngestError(f"{len(train) + len(test):,} images of {'x'.join(map(str, opts.shape))} are "
                          f"{n_bytes:,} bytes, over the limit of {opts.max_bytes:,} (limits.dataset_bytes); "
                          "raise it with --max-bytes N if you mean it")
    tmp = ("datasets", name, f".tmp-{uuid.uuid4().hex[:12]}")
    try:
        w = _Writer(storage, tmp, opts)
        splits = {"train": w.split("train", fs, root, train, classes)}
        if test:
            splits["test"] = w.split("test", fs_t, root_t, test, classes)
        if not opts.skip_bad:
            _refuse_bad(w.bad, "file(s) cannot be read or decoded", "fix or remove them, or pass --skip-bad to "
                                                                    "skip them (recorded in the manifest)")
        if opts.crop == "none" and (len(w.sizes) > 1 or any(a != b for a, b in w.sizes)):
            sizes = sorted(w.sizes)
            raise IngestError(f"--crop none needs square images of one size; found {len(sizes)} sizes: "
                              f"{', '.join(f'{a}x{b}' for a, b in sizes[:SHOW_BAD])}; use --crop center")
        if not splits["train"]["count"]:
            raise IngestError(f"{src}: no training image could be decoded")
        manifest = {"format": FORMAT, "name": name, "source": {"train": src, "test": test_from},
                    "params": {k: v for k, v in asdict(opts).items() if k != "max_bytes"},
                    "versions": {"pillow": PIL.__version__, "numpy": np.__version__},
                    "shape": list(opts.shape), "classes": classes, "splits": splits, "skipped": w.bad}
        _publish(storage, tmp, manifest)
    finally:
        storage.rm(*tmp, recursive=True)
    set_current(storage, name, manifest["id"])
    return manifest


def publish_arrays(storage: Storage, name: str, arrays: dict[str, np.ndarray], params: dict, source: str,
                   classes: list[str]) -> dict:
    """Decoded arrays ({train, test}[_labels]: a built-in's canonical files read by `gansweep data upload`)
    as a dataset of this layout: shards, manifest and id as `add` writes them, made current. The same
    files give the same shards, hence the same id."""
    tmp = ("datasets", name, f".tmp-{uuid.uuid4().hex[:12]}")
    try:
        w = _Writer(storage, tmp, IngestOptions())
        splits = {s: w.arrays(s, arrays[s], arrays[f"{s}_labels"]) for s in ("train", "test") if s in arrays}
        manifest = {"format": FORMAT, "name": name, "source": {"train": source, "test": None}, "params": params,
                    "shape": list(arrays["train"].shape[1:]), "classes": classes, "splits": splits, "skipped": []}
        _publish(storage, tmp, manifest)
    finally:
        storage.rm(*tmp, recursive=True)
    set_current(storage, name, manifest["id"])
    return manifest


def _publish(storage: Storage, tmp: tuple[str, ...], manifest: dict) -> None:
    """Give the manifest its id, move the shards to the id's folder, then write manifest.json: a dataset
    exists once it is there."""
    manifest["id"] = dataset_id(manifest)
    dest = ("datasets", manifest["name"], manifest["id"])
    index = index_blob(index_of(manifest))  # what trials read: the manifest less its per-file lists
    if storage.exists(*dest, "manifest.json"):  # the same images, parameters and versions: already there
        if not storage.exists(*dest, INDEX):  # published before index.json
            storage.write_bytes(index, *dest, INDEX)
        return
    storage.rm(*dest, recursive=True)  # an earlier add cut short before its manifest
    for name in storage.ls(*tmp):
        storage.write_bytes(storage.read_bytes(*tmp, name), *dest, name)
    storage.write_bytes(index, *dest, INDEX)
    storage.write_bytes(json.dumps(manifest, indent=1).encode(), *dest, "manifest.json")
