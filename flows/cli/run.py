"""`gansweep validate`, `run` and `serve`: a sweep file checked, run once, or run every night."""
from __future__ import annotations

import os
import warnings
from typing import Optional

import typer
from rich.table import Table

from flows.cli.common import (DEFAULT_STORAGE, EndpointOpt, RayAddressOpt, SetOpt, StorageOpt, console, locations,
                              say, storage_at)
from flows.cli.results import best_cells


def validate(config: str, sets: SetOpt = [],  # noqa: B006 - typer reads the default
             storage: Optional[str] = typer.Option(None, help="fsspec URL of the storage; resolves a dataset added "
                                                   "with gansweep data add (without it such a dataset is refused)"),
             s3_endpoint_url: EndpointOpt = None) -> None:
    """Check a sweep YAML without running it; print what every grid cell will run, defaults filled in."""
    from gan_tasks.config import expand_grid, load_config, resolved_cells, resolved_common

    sweep = load_config(config, sets, storage_at(storage, s3_endpoint_url) if storage else None)
    trials = expand_grid(sweep)
    for key, value in resolved_common(sweep).items():
        console.print(f"[bold]{key}[/bold] {value}", highlight=False, soft_wrap=True)
    table = Table("cell", "loss", "optimizer", "tricks", title="resolved grid cells (x seeds "
                  f"{', '.join(map(str, sweep.grid.seed))})", title_justify="left")
    for row in resolved_cells(sweep):
        table.add_row(*row.values())
    console.print(table)
    if sweep.search is not None:
        _print_settings(sweep)
    _print_plugins(sweep)
    what = sweep.grid.describe()
    if sweep.search is not None:
        s = sweep.search
        later = (f"tpe's rounds add {len(sweep.grid.pairs()) * (s.budget - s.n_startup) * s.seeds_per_setting} "
                 "trials as results come, " if s.sampler == "tpe" else "")
        what = (f"{len(sweep.grid.pairs())} cells x {s.budget} settings x {s.seeds_per_setting} seed(s); {later}the "
                f"confirm stage adds {len(sweep.grid.pairs()) * s.confirm_seeds} trials once the search is done")
    console.print(f"[green]ok[/green] {config}: sweep {sweep.name!r}, {len(trials)} trials ({what})", soft_wrap=True)


def _print_settings(sweep) -> None:
    """The search's sampled settings, cell by cell: what will train before anything does."""
    from gan_tasks.config.trial import confirm_seeds, search_settings
    from gan_tasks.config.labels import _value

    s = sweep.search
    how = (f"{s.sampler} settings" if s.sampler != "tpe" else f"settings ({s.n_startup} sobol printed here, then "
           f"rounds of {s.round_size} that TPE asks from the earlier settings' results)")
    table = Table("cell", "setting", "values", title=f"search: {s.budget} {how} per cell (seed "
                  f"{s.seed}) x seeds {', '.join(map(str, sweep.grid.seed[:s.seeds_per_setting]))}; then each "
                  f"cell's best on {' + '.join(s.metrics)} x seeds "
                  f"{', '.join(map(str, confirm_seeds(sweep))) or '(none)'}",
                  title_justify="left")
    for st in search_settings(sweep):
        table.add_row(f"{st['loss']}/{st['optimizer']}", str(st["setting"]),
                      ", ".join(f"{k} {_value(v)}" for k, v in st["values"].items()) or "-")
    console.print(table)


def _print_plugins(sweep) -> None:
    """Every plugin entry the sweep uses: its distribution, version and the hash of its package's code."""
    from gan_tasks.config.plugins import used_plugins

    for kind, name, p in used_plugins(sweep):
        console.print(f"[bold]plugin[/bold] {kind} {name}: {p.dist} {p.version}, code sha256 {p.code_hash()} "
                      f"({p.value})", highlight=False, soft_wrap=True)


def run(config: str, storage: StorageOpt = DEFAULT_STORAGE,
        sweep_id: Optional[str] = typer.Option(None, help="default: <name>-<UTC timestamp>"),
        ray_address: RayAddressOpt = None, s3_endpoint_url: EndpointOpt = None,
        force: bool = typer.Option(False, "--force", help="retrain trials that already completed"),
        retrain_changed: bool = typer.Option(False, "--retrain-changed", help="a re-run after a plugin's code "
                                             "changed: retrain exactly the trials that used the old code (without "
                                             "it such a re-run is refused)"),
        ship_plugins: bool = typer.Option(True, "--ship-plugins/--no-ship-plugins", help="with --ray-address: "
                                          "ship the code of the plugins the sweep uses to the workers (off: every "
                                          "node must have them installed; checked before any trial starts)"),
        sets: SetOpt = [],  # noqa: B006
        wait_for_resources: float = typer.Option(
            300.0, min=0, help="with --ray-address: seconds to wait for a node that can hold one trial to join "
                               "(an autoscaler starting it) before giving up with exit 2"),
        ) -> None:
    """Run a sweep: every trial a Prefect task run inside a Ray actor, then evaluation and report."""
    from gan_tasks.config import load_config

    st = storage_at(storage, s3_endpoint_url)
    sweep = load_config(config, sets, st)  # a dataset added with gansweep data add: its id in st
    from flows.run.launch import launch  # Prefect, Ray: after the config and storage URL are known good

    out = launch(sweep, st, sweep_id, ray_address, force, wait_for_resources, say, retrain_changed=retrain_changed,
                 ship_plugins=ship_plugins)
    sid = out["sweep_id"]
    if out["already"]:
        what = "report rebuilt" if out["rebuilt"] else "report up to date"
        console.print(f"\nsweep [bold]{sid}[/bold] already finished, every trial verified in storage ({what}, "
                      f"{out['seconds']:.1f} s): {out['counts']}", soft_wrap=True)
    else:
        console.print(f"\nsweep [bold]{sid}[/bold] finished in {out['seconds']:.0f} s: {out['counts']}")
    best_cells(st, sid)
    locations(results=st.uri("sweeps", sid), report=out["report"])
    if out["not_completed"]:
        console.print(f"[yellow]{out['not_completed']} trial(s) did not complete[/yellow]")
        raise typer.Exit(1)


def serve(config: str, cron: str = typer.Option("0 2 * * *", help="cron schedule (UTC)"),
          storage: StorageOpt = DEFAULT_STORAGE, ray_address: RayAddressOpt = None,
          s3_endpoint_url: EndpointOpt = None,
          name: str = typer.Option("nightly", help="deployment name"),
          prefect_port: int = typer.Option(4200, help="port of the Prefect server serve starts when no "
                                           "PREFECT_API_URL is set (UI and API)"),
          fail_on_regression: bool = typer.Option(True, help="a night with a regression (corrected one-sided "
                                                  "tests, a missing cell, more failed seeds) fails")) -> None:
    """Serve the nightly deployment of CONFIG on a cron schedule, without a work pool.

    Without PREFECT_API_URL it starts a Prefect server with its scheduler (flows/server/local.py)."""
    from gan_tasks.config import load_config

    st = storage_at(storage, s3_endpoint_url)  # a bad storage URL
    load_config(config, (), st)  # and a bad config: refused now, not at 2 am
    # A local path is made absolute: the run happens later, from whatever directory the runner is in.
    url = storage if st.is_s3 or "://" in storage else os.path.abspath(storage)
    from flows.guard import interrupt
    from flows.server import local

    interrupt.clean_orphans(say)
    interrupt.mark_run()  # the nights' Ray and Prefect processes carry this server's name
    if os.environ.get("PREFECT_API_URL"):
        local.check_external(os.environ["PREFECT_API_URL"])
    else:
        local.LocalServer(prefect_port, say).start()
    # Prefect's runner stops on SIGTERM through a coroutine it never awaits: its warning is noise.
    warnings.filterwarnings("ignore", message="coroutine 'Runner.astop' was never awaited")
    from flows.run.nightly import nightly  # imports Prefect: after PREFECT_API_URL is set

    try:
        nightly.serve(name=name, cron=cron, parameters={"config_path": os.path.abspath(config), "storage_url": url,
                                                        "s3_endpoint_url": s3_endpoint_url, "ray_address": ray_address,
                                                        "fail_on_regression": fail_on_regression})
    except KeyboardInterrupt:
        say("serve stopped")


def register(app: typer.Typer) -> None:
    app.command()(validate)
    app.command()(run)
    app.command()(serve)
