"""`gansweep cleanup` and `defaults-table`: a quiet machine, and the evidence behind the 2-D defaults."""
from __future__ import annotations

import os

import typer

from flows.cli.common import DEFAULT_STORAGE, EndpointOpt, StorageOpt, console, say, storage_at
from gan_tasks.errors import UserError


def cleanup() -> None:
    """Stop the processes (Ray, temporary Prefect API server) that killed `gansweep run`s left behind.

    `gansweep run` and `serve` do this themselves when they start; this is for a machine you want quiet now."""
    from flows.guard import interrupt

    found = interrupt.orphans()
    for pid, run in sorted(found.items()):
        console.print(f"pid {pid}: started by run {run.split(':')[0]} (gone)", highlight=False)
    if not interrupt.clean_orphans(say):
        console.print("nothing left behind by a killed gansweep run")


def defaults_table(steps: int = typer.Option(5000, min=1, help="generator steps per trial"),
                   seeds: str = typer.Option("0,1,2", help="comma-separated seeds"),
                   out: str = typer.Option("configs/defaults.md", help="where the markdown table goes"),
                   storage: StorageOpt = DEFAULT_STORAGE, s3_endpoint_url: EndpointOpt = None) -> None:
    """Every loss with adam on ring-8 and grid-25 at the 2-D defaults, N seeds: the table behind them."""
    st = storage_at(storage, s3_endpoint_url)
    seed_list = [x.strip() for x in seeds.split(",") if x.strip()]
    if not all(x.lstrip("-").isdigit() for x in seed_list):
        raise UserError(f"--seeds {seeds!r}: give comma-separated integers")
    if len(seed_list) < 2 or len(set(map(int, seed_list))) != len(seed_list):
        raise UserError(f"--seeds {seeds!r}: give at least 2 distinct seeds (a confidence interval needs them)")
    from flows.run.defaults_table import run_table

    md, wall = run_table(st, steps, [int(x) for x in seed_list])
    with open(out, "w") as f:
        f.write(md + f"\nWall time of this run: {wall:.0f} s on {os.cpu_count()} CPU cores.\n")
    print(md)
    print(f"written to {os.path.abspath(out)} ({wall:.0f} s)")


def register(app: typer.Typer) -> None:
    app.command()(cleanup)
    app.command("defaults-table")(defaults_table)
