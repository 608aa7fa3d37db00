"""`gansweep data ...`: datasets in object storage."""
from __future__ import annotations

from typing import Optional

import typer

from flows.cli.common import DEFAULT_STORAGE, EndpointOpt, StorageOpt, aligned, console, say, storage_at

data_app = typer.Typer(no_args_is_help=True, help="Datasets in object storage.")


@data_app.command("upload")
def upload(name: str, path: str = typer.Argument(..., help="folder with the canonical files (mnist-fashion: "
                                                           "the folder holding mnist/ and fashion-mnist/)"),
           storage: StorageOpt = DEFAULT_STORAGE, s3_endpoint_url: EndpointOpt = None) -> None:
    """Check a dataset's canonical files (md5) and write it to <storage>/datasets/NAME/ (one-domain sets as
    the shards of a dataset id, like data add; two-domain pairs as arrays)."""
    from gan_tasks.data.images import upload as upload_dataset

    st = storage_at(storage, s3_endpoint_url)
    m = upload_dataset(st, name, path)
    if "id" not in m:  # two domains: whole arrays
        for key, f in m["files"].items():
            console.print(f"{key}: {tuple(f['shape'])}")
        console.print(f"uploaded {name} to {st.uri('datasets', name)}")
        return
    counts = ", ".join(f"{s} {v['count']:,}" for s, v in m["splits"].items())
    say(f"uploaded {name}@{m['id']}: {counts} images of {'x'.join(map(str, m['shape']))}, {len(m['classes'])} "
        f"classes, to {st.uri('datasets', name, m['id'])}")


@data_app.command("add")
def add(name: str, src: str = typer.Argument(..., help="folder or fsspec URL (s3://bucket/prefix) of png / jpg / "
                                                       "webp images, nested folders allowed"),
        labels: str = typer.Option("none", help="subfolders: SRC/<class>/... gives each image its class | none"),
        size: int = typer.Option(64, help="side of the square images stored (pixels)"),
        mode: str = typer.Option("RGB", help="L (grey) | RGB"),
        crop: str = typer.Option("center", help="center: largest centred square | none: images must be square, "
                                                "one size"),
        test_fraction: float = typer.Option(0.0, help="held-out share of SRC (by a hash of each path)"),
        test_from: Optional[str] = typer.Option(None, help="held-out images from another folder or URL"),
        skip_bad: bool = typer.Option(False, "--skip-bad", help="skip unreadable or undecodable files "
                                                                "(recorded in the manifest) instead of refusing"),
        max_bytes: Optional[int] = typer.Option(None, help="refuse a dataset larger than this (uint8 bytes); "
                                                           "default: limits.dataset_bytes"),
        storage: StorageOpt = DEFAULT_STORAGE, s3_endpoint_url: EndpointOpt = None) -> None:
    """Decode a folder of images once into versioned uint8 shards under <storage>/datasets/NAME/<id>/."""
    from gan_tasks.config import Limits
    from gan_tasks.data.ingest import IngestOptions, add as ingest

    opts = IngestOptions(size=size, mode=mode, crop=crop, labels=labels, test_fraction=test_fraction,
                         skip_bad=skip_bad, max_bytes=max_bytes or Limits().dataset_bytes)
    st = storage_at(storage, s3_endpoint_url)
    m = ingest(st, name, src, opts, test_from, st.endpoint_url or s3_endpoint_url)
    counts = ", ".join(f"{s} {v['count']:,}" for s, v in m["splits"].items())
    say(f"added {name}@{m['id']}: {counts} images of {'x'.join(map(str, m['shape']))}, "
        f"{len(m['classes'])} classes, {len(m['skipped'])} skipped; use `dataset: {name}` in a sweep")


@data_app.command("ls")
def ls(storage: StorageOpt = DEFAULT_STORAGE, s3_endpoint_url: EndpointOpt = None) -> None:
    """Datasets in storage: added (`data add`) and uploaded built-ins (`data upload`): name, id (* current),
    images per split, shape, classes, size, how it came."""
    from gan_tasks.data.userdata import list_datasets

    rows = list_datasets(storage_at(storage, s3_endpoint_url))
    if not rows:
        say(f"no datasets in {storage}; add one with gansweep data add NAME SRC")
        return
    aligned(("name", "id", "images", "shape", "classes", "size", "kind"),
            [(r["name"], r["id"] + (" *" if r["current"] else ""),
              " / ".join(f"{s} {n:,}" for s, n in r["count"].items()), "x".join(map(str, r["shape"])),
              str(len(r["classes"])) if r["classes"] else "-", f"{r['bytes'] / 1e6:,.1f} MB", r["kind"]) for r in rows])


def register(app: typer.Typer) -> None:
    app.add_typer(data_app, name="data")
