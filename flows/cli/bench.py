"""`gansweep bench`: a thin entry to the benchmarks (the `bench` package of a checkout, not shipped in the
wheel; imported only when this command runs)."""
from __future__ import annotations

import importlib.util
from typing import Optional

import typer

from flows.cli.common import DEFAULT_STORAGE, EndpointOpt, StorageOpt, console, storage_at
from gan_tasks.errors import UserError


def bench(short: bool = typer.Option(False, "--short", help="CI smoke run: tiny trials, figures not meaningful"),
          storage: StorageOpt = DEFAULT_STORAGE, s3_endpoint_url: EndpointOpt = None,
          mnist: Optional[str] = typer.Option(None, help="folder of the MNIST IDX files: adds the dcgan-28 P2 "
                                                         "figure (uploaded to storage if missing)")) -> None:
    """Benchmarks: sweep overhead and step rate as ratios against a bare PyTorch loop, peak memory."""
    st = storage_at(storage, s3_endpoint_url)
    if importlib.util.find_spec("bench") is None:
        raise UserError("the benchmarks live in a checkout's bench/ package, not in the installed wheel: run "
                        "this from a checkout")
    from bench.run import run_bench

    run_bench(st, short, mnist, lambda f: console.print(f"{f.key} = {f.value:.3f}  ({f.label})", highlight=False,
                                                        soft_wrap=True, markup=False))  # one line each
    console.print(f"saved to {st.uri('bench')}")


def register(app: typer.Typer) -> None:
    app.command()(bench)
