"""`gansweep data ...`: datasets in object storage."""
from __future__ import annotations

import typer

from flows.cli.common import DEFAULT_STORAGE, EndpointOpt, StorageOpt, console, storage_at

data_app = typer.Typer(no_args_is_help=True, help="Datasets in object storage.")


@data_app.command("upload")
def upload(name: str, path: str = typer.Argument(..., help="folder with the canonical files (mnist-fashion: "
                                                           "the folder holding mnist/ and fashion-mnist/)"),
           storage: StorageOpt = DEFAULT_STORAGE, s3_endpoint_url: EndpointOpt = None) -> None:
    """Check a dataset's canonical files (md5) and write it to <storage>/datasets/NAME/."""
    from gan_tasks.data.images import upload as upload_dataset

    st = storage_at(storage, s3_endpoint_url)
    manifest = upload_dataset(st, name, path)
    for key, f in manifest["files"].items():
        console.print(f"{key}: {tuple(f['shape'])}")
    console.print(f"uploaded {name} to {st.uri('datasets', name)}")


def register(app: typer.Typer) -> None:
    app.add_typer(data_app, name="data")
