"""What every command shares: the console, the storage options, and the one place a UserError becomes
one line and an exit code."""
from __future__ import annotations

import os
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.markup import escape
from typer.core import TyperGroup

from gan_tasks.errors import UserError

console = Console()

StorageOpt = Annotated[str, typer.Option("--storage", help="fsspec URL: a local path, file://PATH or s3://bucket/prefix")]
EndpointOpt = Annotated[Optional[str], typer.Option(
    "--s3-endpoint-url", envvar="GANSWEEP_S3_ENDPOINT_URL", help="S3-compatible endpoint (MinIO, moto); env "
    "GANSWEEP_S3_ENDPOINT_URL")]
RayAddressOpt = Annotated[Optional[str], typer.Option("--ray-address", envvar="RAY_ADDRESS", help="existing Ray cluster")]
SetOpt = Annotated[list[str], typer.Option("--set", help="override a config value, validated like the file: "
                                                         "--set train.steps=200 --set grid.seed=[0,1]")]
DEFAULT_STORAGE = "gansweep-results"


class UserErrors(TyperGroup):
    """The command tree: a UserError raised anywhere below is printed as one line (and its hint), then the
    command exits with the error's code. No other command catches errors to print them."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except UserError as e:
            # a path in it stays whole; a value like [lo, hi] is text, not rich markup
            console.print(f"[red]error:[/red] {escape(str(e))}", highlight=False, soft_wrap=True)
            if e.hint:
                console.print(e.hint, highlight=False, soft_wrap=True, markup=False)
            raise typer.Exit(e.exit_code) from None


def storage_at(url: str, endpoint: str | None, *sweep_ids: str):
    """The storage at this URL; with sweep ids, one that holds each of them (else a UserError listing the
    sweeps that are there)."""
    from gan_tasks.data.storage import Storage

    st = Storage.parse(url, endpoint)
    for sid in sweep_ids:
        if not st.exists("sweeps", sid, "config.yaml"):
            raise UserError(f"no sweep {sid!r} in {st.url}; sweeps there: {', '.join(st.ls('sweeps')) or '(none)'}")
    return st


def say(msg: str) -> None:
    """A message as it is: no markup, no highlighting, never wrapped."""
    console.print(msg, soft_wrap=True, highlight=False, markup=False)


def as_url(where: str) -> str:
    return where if "://" in where else "file://" + os.path.abspath(where)


def locations(**where: str) -> None:
    """One location per line, never wrapped (a wrapped path cannot be pasted); local paths as file:// URLs."""
    for label, url in where.items():
        console.print(f"{label + ':':9}{as_url(url)}", soft_wrap=True, highlight=False)


def aligned(head: tuple[str, ...], rows: list[tuple[str, ...]]) -> None:
    """A table as aligned plain lines: nothing is cut or wrapped at the terminal's width."""
    widths = [max(len(x[i]) for x in [head, *rows]) for i in range(len(head))]
    for line in [head, *rows]:
        say("  " + "  ".join(x.ljust(w) for x, w in zip(line, widths)).rstrip())
