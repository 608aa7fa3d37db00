"""The gansweep command line: one module per command group, registered here (nothing else lives here).
A UserError raised by any command is printed as one line with its exit code (common.UserErrors)."""
from __future__ import annotations

import typer

from flows.cli import bench, catalog, data, evaluator, ops, results, run
from flows.cli.common import UserErrors

app = typer.Typer(cls=UserErrors, add_completion=False, no_args_is_help=True,
                  help="GAN sweeps on Ray, orchestrated by Prefect.")
for group in (run, results, catalog, data, evaluator, ops, bench):  # the order `gansweep --help` lists them
    group.register(app)
