"""The gansweep command line."""
from __future__ import annotations

import atexit
import gc
import os
import sys
import time
import warnings
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table


def _quiet_embedded_prefect() -> None:
    """Settings for the temporary Prefect API a run starts when no PREFECT_API_URL is set; called
    before Prefect is imported, and a user's own environment wins. It sends anonymous analytics on
    start-up (offline: an ERROR nobody can act on); its periodic services (scheduler, late runs,
    automations...) serve deployments it will never have, and compete with the run for the SQLite
    file ("database is locked" tracebacks, PrefectHQ/prefect#18934): off, with a longer lock wait."""
    if os.environ.get("PREFECT_API_URL"):
        return
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_SERVER_DATABASE_TIMEOUT", "60")
    # Prefect gives its temporary API 20 s to start; on a machine busy with other work that is not enough
    # (seen at load 13 on 2 cores: the sweep failed before its first trial). Waiting longer costs nothing.
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
    # At exit Prefect stops the server with SIGTERM and kills it after 5 s; uvicorn meanwhile waits for
    # the run's keep-alive connections to close, which they never do: 5 s added to every run's end.
    # Everything is written by then (the flow run is final); close them after 1 s (uvicorn's own setting).
    os.environ.setdefault("UVICORN_TIMEOUT_GRACEFUL_SHUTDOWN", "1")
    for service in ("SCHEDULER", "LATE_RUNS", "FOREMAN", "PAUSE_EXPIRATIONS", "CANCELLATION_CLEANUP",
                    "REPOSSESSOR", "TRIGGERS", "DB_VACUUM"):
        os.environ.setdefault(f"PREFECT_SERVER_SERVICES_{service}_ENABLED", "false")

app = typer.Typer(add_completion=False, no_args_is_help=True, help="GAN sweeps on Ray, orchestrated by Prefect.")
console = Console()

STORAGE_HELP = "fsspec URL: a local path, file://PATH or s3://bucket/prefix"
ENDPOINT_HELP = "S3-compatible endpoint (MinIO, moto); env GANSWEEP_S3_ENDPOINT_URL"


def _fail(msg: str, code: int = 2) -> None:
    console.print(f"[red]error:[/red] {msg}", highlight=False, soft_wrap=True)  # a path in it stays whole
    raise typer.Exit(code)


SET_HELP = "override a config value, validated like the file: --set train.steps=200 --set grid.seed=[0,1]"


def _load(config: str, sets: list[str] | None = None, storage=None):
    """The validated sweep; with a storage, a dataset added with `gansweep data add` resolves to its id there."""
    from gan_tasks.config import ConfigError, load_config

    try:
        return load_config(config, sets or [], storage)
    except ConfigError as e:
        _fail(str(e))


@app.command()
def validate(config: str, sets: list[str] = typer.Option([], "--set", help=SET_HELP),
             storage: Optional[str] = typer.Option(None, help=STORAGE_HELP + "; resolves a dataset added with "
                                                   "gansweep data add (without it such a dataset is refused)"),
             s3_endpoint_url: Optional[str] = typer.Option(None, envvar="GANSWEEP_S3_ENDPOINT_URL",
                                                           help=ENDPOINT_HELP)) -> None:
    """Check a sweep YAML without running it; print what every grid cell will run, defaults filled in."""
    from gan_tasks.config import ConfigError, expand_grid, resolved_cells, resolved_common
    from gan_tasks.data.storage import Storage

    try:
        st = Storage.parse(storage, s3_endpoint_url) if storage else None
    except ValueError as e:
        _fail(str(e))
    sweep = _load(config, sets, st)
    try:
        trials = expand_grid(sweep)
    except ConfigError as e:
        _fail(str(e))
    for key, value in resolved_common(sweep).items():
        console.print(f"[bold]{key}[/bold] {value}", highlight=False, soft_wrap=True)
    table = Table("cell", "loss", "optimizer", "tricks", title="resolved grid cells (x seeds "
                  f"{', '.join(map(str, sweep.grid.seed))})", title_justify="left")
    for row in resolved_cells(sweep):
        table.add_row(*row.values())
    console.print(table)
    _print_plugins(sweep)
    console.print(f"[green]ok[/green] {config}: sweep {sweep.name!r}, {len(trials)} trials "
                  f"({sweep.grid.describe()})", soft_wrap=True)


def _print_plugins(sweep) -> None:
    """Every plugin entry the sweep uses: its distribution, version and the hash of its package's code."""
    from gan_tasks.config.plugins import used_plugins

    for kind, name, p in used_plugins(sweep):
        console.print(f"[bold]plugin[/bold] {kind} {name}: {p.dist} {p.version}, code sha256 {p.code_hash()} "
                      f"({p.value})", highlight=False, soft_wrap=True)


@app.command()
def run(config: str,
        storage: str = typer.Option("gansweep-results", help=STORAGE_HELP),
        sweep_id: Optional[str] = typer.Option(None, help="default: <name>-<UTC timestamp>"),
        ray_address: Optional[str] = typer.Option(None, envvar="RAY_ADDRESS", help="existing Ray cluster"),
        s3_endpoint_url: Optional[str] = typer.Option(None, envvar="GANSWEEP_S3_ENDPOINT_URL", help=ENDPOINT_HELP),
        force: bool = typer.Option(False, "--force", help="retrain trials that already completed"),
        sets: list[str] = typer.Option([], "--set", help=SET_HELP),
        wait_for_resources: float = typer.Option(
            300.0, min=0, help="with --ray-address: seconds to wait for a node that can hold one trial to join "
                               "(an autoscaler starting it) before giving up with exit 2"),
        ) -> None:
    """Run a sweep: every trial a Prefect task run inside a Ray actor, then evaluation and report."""
    from gan_tasks.config import ConfigError, expand_grid
    from gan_tasks.data.storage import Storage

    try:
        st = Storage.parse(storage, s3_endpoint_url)
    except ValueError as e:
        _fail(str(e))
    sweep = _load(config, sets, st)  # a dataset added with gansweep data add: its id in st
    try:
        expand_grid(sweep)
    except ConfigError as e:
        _fail(str(e))
    from flows.preflight import PreflightError, preflight

    try:  # storage reachable and writable, datasets present, resources that fit: before Ray or Prefect
        preflight(st, sweep, ray_address)
    except PreflightError as e:
        _fail(str(e))
    from flows.lock import SweepLock, SweepLocked, default_sweep_id
    from gan_tasks.config import ConfigError, check_sweep_id

    try:
        sweep_id = sweep_id and check_sweep_id(sweep_id)
    except ConfigError as e:
        _fail(str(e))
    if sweep_id and not force and _already_finished(st, sweep, sweep_id):
        return
    sid = sweep_id or default_sweep_id(sweep.name)
    try:  # a live run holds this sweep id: say so now, before Prefect, Ray and torch are even imported
        SweepLock(st, sid).check()
    except SweepLocked as e:
        _fail(str(e), 3)
    say = lambda msg: console.print(msg, soft_wrap=True, highlight=False, markup=False)  # noqa: E731
    if ray_address:  # join the cluster now: the flow uses this connection; a request no node can hold fails here
        from flows.actors import join_cluster
        from flows.preflight import wait_for_cluster_resources

        join_cluster(ray_address)
        try:
            wait_for_cluster_resources(sweep.resources, ray_address, wait_for_resources, say)
        except PreflightError as e:
            _fail(str(e))
    from flows import interrupt

    # kill -9 of an earlier run left its Ray and Prefect server running: stop them; this run's own
    # processes (started from here on, the Prefect API first) carry its name
    interrupt.clean_orphans(say)
    interrupt.mark_run()
    _quiet_embedded_prefect()
    from flows.warm import WarmStart

    warm = WarmStart(say)  # the temporary Prefect API starts now, beside the imports and Ray
    from flows.sweep import sweep_flow

    # Ctrl-C: running trials marked interrupted, every child process stopped, exit 130 (flows/interrupt.py)
    interrupt.install(st, sid, say)
    # Python's last garbage collection at exit walks every object torch, Prefect and pydantic made: 3-5 s
    # after the summary, for memory the OS takes back anyway. Frozen by an atexit handler, they are skipped
    # (the other handlers, Prefect's server stop among them, still run); a caller that goes on is untouched.
    atexit.register(gc.freeze)
    t0 = time.perf_counter()
    try:
        warm.start_ray(sweep, len(expand_grid(sweep)), sid, ray_address)
        warm.wait()
        state = sweep_flow(sweep.model_dump(mode="json"), st.url, sid, ray_address, s3_endpoint_url, force,
                           actors=warm.actors, return_state=True)
    finally:
        warm.close()
    out = state.result(raise_on_failure=False)
    if isinstance(out, SweepLocked):
        _fail(str(out), 3)
    if isinstance(out, BaseException):
        raise out
    console.print(f"\nsweep [bold]{sid}[/bold] finished in {time.perf_counter() - t0:.0f} s: {out['counts']}")
    _best_cells(st, sid)
    # One location per line, never wrapped (a wrapped path cannot be pasted); local paths as file:// URLs.
    for label, where in (("results", st.uri("sweeps", sid)), ("report", out["report"])):
        console.print(f"{label + ':':9}{_as_url(where)}", soft_wrap=True, highlight=False)
    if out["not_completed"]:
        console.print(f"[yellow]{out['not_completed']} trial(s) did not complete[/yellow]")
        raise typer.Exit(1)


def _already_finished(st, sweep, sid: str) -> bool:
    """A re-run of a finished sweep, verified from storage alone (flows/finished.py): no Ray, no
    Prefect, seconds. Prints what a full run would; False when the flow must run."""
    from flows.finished import finished

    t0 = time.perf_counter()
    out = finished(st, sweep, sid)
    if out is None:
        return False
    what = "report rebuilt" if out["rebuilt"] else "report up to date"
    console.print(f"\nsweep [bold]{sid}[/bold] already finished, every trial verified in storage ({what}, "
                  f"{time.perf_counter() - t0:.1f} s): {out['counts']}", soft_wrap=True)
    _best_cells(st, sid)
    for label, where in (("results", st.uri("sweeps", sid)), ("report", out["report"])):
        console.print(f"{label + ':':9}{_as_url(where)}", soft_wrap=True, highlight=False)
    return True


def _as_url(where: str) -> str:
    return where if "://" in where else "file://" + os.path.abspath(where)


def _best_cells(st, sid: str, top: int = 5) -> None:
    """The closing table: per ranked metric, the best cells with their mean, 95 % CI over seeds (cut to the
    metric's bounds) and the test against the best cell (p_adj: Holm). Plain aligned lines: nothing is cut."""
    t = st.read_table("sweeps", sid, "rankings")
    if t is None or t.num_rows == 0:
        return
    ranks = t.to_pandas()
    rows = []
    for metric, g in ranks.groupby("metric", sort=False):
        for r in g.sort_values("rank").head(top).itertuples():
            ci = f"[{r.ci95_low:.3g}, {r.ci95_high:.3g}]" if r.ci95_low == r.ci95_low else (
                "no spread" if "no spread" in r.note else "")
            vs = (f"p_adj={r.p_adj:.2g}" + (" *" if r.significant else "")) if r.p_adj == r.p_adj else (
                "best" if r.rank == 1 else "")
            seeds = f"{r.seeds}" + (f" ({r.seeds_failed} failed)" if r.seeds_failed else "")
            rows.append((metric, str(r.rank), f"{r.loss}/{r.optimizer}", f"{r.mean:.3g}", ci, seeds, vs))
    console.print("\n[bold]best cells[/bold] (mean over seeds; * = worse than the best at p_adj <= 0.05: exact "
                  "permutation test or Welch's, Holm over all pairs of cells)",
                  soft_wrap=True)
    _aligned(("metric", "rank", "cell", "mean", "95 % CI", "seeds", "vs best"), rows)


def _aligned(head: tuple[str, ...], rows: list[tuple[str, ...]]) -> None:
    """A table as aligned plain lines: nothing is cut or wrapped at the terminal's width."""
    widths = [max(len(x[i]) for x in [head, *rows]) for i in range(len(head))]
    for line in [head, *rows]:
        console.print("  " + "  ".join(x.ljust(w) for x, w in zip(line, widths)).rstrip(), soft_wrap=True,
                      highlight=False, markup=False)


@app.command("list")
def list_(what: str = typer.Argument(..., help="programs | losses | optimizers | models | datasets | metrics | tricks | "
                                                  "train | evaluation | resources | limits")) -> None:
    """List registered names with a one-line description and each parameter's type, range and default."""
    from gan_tasks.methods.catalog import LOSSES, MODELS, OPTIMIZERS
    from gan_tasks.methods.trick_settings import Tricks
    from gan_tasks.config import EvalConfig, Limits, Resources, TrainConfig
    from gan_tasks.data.datasets import DATASETS
    from gan_tasks.methods.params import describe_field, describe_schema

    from gan_tasks.methods.programs import PROGRAMS

    registries = {"programs": PROGRAMS, "losses": LOSSES, "optimizers": OPTIMIZERS, "models": MODELS,
                  "datasets": DATASETS}
    sections = {"tricks": Tricks, "train": TrainConfig, "evaluation": EvalConfig, "resources": Resources,
                "limits": Limits}
    if what not in [*registries, "metrics", *sections]:
        _fail(f"cannot list {what!r}; valid: {', '.join([*registries, 'metrics', *sections])}")
    if what == "metrics":
        from gan_tasks.methods.metric_specs import METRICS

        rows = [(n, d, f"outputs: {', '.join(METRICS.get(n).outputs)}; measured on its datasets")
                for n, d in METRICS.describe().items()] + _plugin_rows(METRICS)
    elif what in sections:  # the sections of a sweep file: each field's type, bounds and default
        rows = [(n, f"{f.description or ''} (default {f.default})".lstrip(), describe_field(f))
                for n, f in sections[what].model_fields.items()]
    elif what == "programs":
        rows = [(n, d, PROGRAMS.get(n).summary) for n, d in PROGRAMS.describe().items()] + _plugin_rows(PROGRAMS)
    else:
        reg = registries[what]
        rows = [(n, d, describe_schema(reg.get(n).schema, _defaults(reg.get(n)))) for n, d in reg.describe().items()]
        rows += _plugin_rows(reg) if reg.group else []
    third = {"programs": "metrics; combinations"}.get(what, "type, range" if what in sections else
                                                    "parameters: type, range (default)")
    table = Table("name", "description", third,
                  show_lines=True)
    for row in rows:
        table.add_row(*row)
    console.print(table)


def _plugin_rows(reg) -> list[tuple[str, str, str]]:
    """One row per plugin entry point of the registry: its doc and parameters, or BROKEN with the error."""
    from rich.markup import escape

    from gan_tasks.methods.params import describe_schema
    from gan_tasks.methods.plugins import PluginError

    rows = []
    for name, found in reg.plugins().items():
        where = " and ".join(f"{p.dist} {p.version}" for p in found)
        try:
            spec = reg.get(name)
        except PluginError as e:
            rows.append((name, escape(f"BROKEN ({where}): {e}"), ""))
            continue
        third = (spec.summary if hasattr(spec, "summary") else
                 (f"outputs: {', '.join(spec.outputs)}; " if hasattr(spec, "outputs") else "")
                 + describe_schema(spec.schema, _defaults(spec)))
        rows.append((name, escape(f"plugin {where}: {reg.doc(name)}"), escape(third)))
    return rows


def _defaults(spec) -> dict:
    """An entry's defaults as `gansweep list` shows them: 'points / images' where the kind changes one."""
    if not hasattr(spec, "defaults_for"):
        return spec.defaults
    pts, img = spec.defaults_for("points"), spec.defaults_for("images")
    return {k: pts.get(k) if pts.get(k) == img.get(k) else f"{pts.get(k)} points / {img.get(k)} images"
            for k in {**pts, **img}}


def _sweeps_in(storage: str, s3_endpoint_url: str | None, *sweep_ids: str):
    """The storage holding these sweeps; a missing one is an error listing the sweeps that are there."""
    from gan_tasks.data.storage import Storage

    try:
        st = Storage.parse(storage, s3_endpoint_url)
    except ValueError as e:
        _fail(str(e))
    for sid in sweep_ids:
        if not st.exists("sweeps", sid, "config.yaml"):
            _fail(f"no sweep {sid!r} in {st.url}; sweeps there: {', '.join(st.ls('sweeps')) or '(none)'}")
    return st


@app.command()
def report(sweep_id: str, storage: str = typer.Option("gansweep-results", help=STORAGE_HELP),
           s3_endpoint_url: Optional[str] = typer.Option(None, envvar="GANSWEEP_S3_ENDPOINT_URL",
                                                         help=ENDPOINT_HELP)) -> None:
    """Regenerate a sweep's report/index.html from storage alone."""
    from gan_tasks.evaluation.report import write_report
    from gan_tasks.data.storage import DamagedFile

    st = _sweeps_in(storage, s3_endpoint_url, sweep_id)
    try:
        console.print(write_report(st, sweep_id), soft_wrap=True)
    except DamagedFile as e:
        _fail(f"{e}\nre-running the sweep (gansweep run CONFIG --sweep-id {sweep_id}) moves it to quarantine/ and "
              "regenerates it")


@app.command()
def serve(config: str, cron: str = typer.Option("0 2 * * *", help="cron schedule (UTC)"),
          storage: str = typer.Option("gansweep-results", help=STORAGE_HELP),
          ray_address: Optional[str] = typer.Option(None, envvar="RAY_ADDRESS"),
          s3_endpoint_url: Optional[str] = typer.Option(None, envvar="GANSWEEP_S3_ENDPOINT_URL", help=ENDPOINT_HELP),
          name: str = typer.Option("nightly", help="deployment name"),
          prefect_port: int = typer.Option(4200, help="port of the Prefect server serve starts when no "
                                           "PREFECT_API_URL is set (UI and API)"),
          fail_on_regression: bool = typer.Option(True, help="a night with a regression (corrected one-sided "
                                                  "tests, a missing cell, more failed seeds) fails")) -> None:
    """Serve the nightly deployment of CONFIG on a cron schedule, without a work pool.

    Without PREFECT_API_URL it starts a Prefect server with its scheduler (flows/local_server.py)."""
    from gan_tasks.data.storage import Storage

    try:
        st = Storage.parse(storage, s3_endpoint_url)  # a bad storage URL
    except ValueError as e:
        _fail(str(e))
    _load(config, None, st)  # refuse a bad config now, not at 2 am
    # A local path is made absolute: the run happens later, from whatever directory the runner is in.
    url = storage if st.is_s3 or "://" in storage else os.path.abspath(storage)
    from flows import interrupt, local_server

    say = lambda msg: console.print(msg, soft_wrap=True, highlight=False, markup=False)  # noqa: E731
    interrupt.clean_orphans(say)
    interrupt.mark_run()  # the nights' Ray and Prefect processes carry this server's name
    try:
        if os.environ.get("PREFECT_API_URL"):
            local_server.check_external(os.environ["PREFECT_API_URL"])
        else:
            local_server.LocalServer(prefect_port, say).start()
    except local_server.ServerError as e:
        _fail(str(e))
    # Prefect's runner stops on SIGTERM through a coroutine it never awaits: its warning is noise.
    warnings.filterwarnings("ignore", message="coroutine 'Runner.astop' was never awaited")
    from flows.nightly import nightly  # imports Prefect: after PREFECT_API_URL is set

    try:
        nightly.serve(name=name, cron=cron, parameters={"config_path": os.path.abspath(config), "storage_url": url,
                                                        "s3_endpoint_url": s3_endpoint_url, "ray_address": ray_address,
                                                        "fail_on_regression": fail_on_regression})
    except KeyboardInterrupt:
        say("serve stopped")


@app.command()
def cleanup() -> None:
    """Stop the processes (Ray, temporary Prefect API server) that killed `gansweep run`s left behind.

    `gansweep run` and `serve` do this themselves when they start; this is for a machine you want quiet now."""
    from flows import interrupt

    found = interrupt.orphans()
    for pid, run in sorted(found.items()):
        console.print(f"pid {pid}: started by run {run.split(':')[0]} (gone)", highlight=False)
    n = interrupt.clean_orphans(lambda msg: console.print(msg, soft_wrap=True, highlight=False, markup=False))
    if not n:
        console.print("nothing left behind by a killed gansweep run")


@app.command()
def bench(short: bool = typer.Option(False, "--short", help="CI smoke run: tiny trials, figures not meaningful"),
          storage: str = typer.Option("gansweep-results", help=STORAGE_HELP),
          s3_endpoint_url: Optional[str] = typer.Option(None, envvar="GANSWEEP_S3_ENDPOINT_URL", help=ENDPOINT_HELP),
          mnist: Optional[str] = typer.Option(None, help="folder of the MNIST IDX files: adds the dcgan-28 P2 "
                                                            "figure (uploaded to storage if missing)")) -> None:
    """Benchmarks: sweep overhead and step rate as ratios against a bare PyTorch loop, peak memory."""
    from flows.bench import run_bench
    from gan_tasks.data.storage import Storage

    try:
        st = Storage.parse(storage, s3_endpoint_url)
    except ValueError as e:
        _fail(str(e))
    _quiet_embedded_prefect()  # P1's flows use the temporary API as `gansweep run` does
    run_bench(st, short, mnist, lambda name, value: console.print(f"{name} = {value:.3f}", highlight=False,
                                                                soft_wrap=True))  # one line each
    console.print(f"saved to {st.uri('bench')}")


@app.command("defaults-table")
def defaults_table(steps: int = typer.Option(5000, min=1, help="generator steps per trial"),
                   seeds: str = typer.Option("0,1,2", help="comma-separated seeds"),
                   out: str = typer.Option("configs/defaults.md", help="where the markdown table goes"),
                   storage: str = typer.Option("gansweep-results", help=STORAGE_HELP),
                   s3_endpoint_url: Optional[str] = typer.Option(None, envvar="GANSWEEP_S3_ENDPOINT_URL",
                                                                 help=ENDPOINT_HELP)) -> None:
    """Every loss with adam on ring-8 and grid-25 at the 2-D defaults, N seeds: the table behind them."""
    from flows.defaults_table import run_table
    from gan_tasks.data.storage import Storage

    try:
        st = Storage.parse(storage, s3_endpoint_url)
        seed_list = [int(x) for x in seeds.split(",") if x.strip()]
    except ValueError as e:
        _fail(f"--seeds {seeds!r} / --storage: {e}")
    if len(seed_list) < 2 or len(set(seed_list)) != len(seed_list):
        _fail(f"--seeds {seeds!r}: give at least 2 distinct seeds (a confidence interval needs them)")
    _quiet_embedded_prefect()
    md, wall = run_table(st, steps, seed_list)
    with open(out, "w") as f:
        f.write(md + f"\nWall time of this run: {wall:.0f} s on {os.cpu_count()} CPU cores.\n")
    print(md)
    print(f"written to {os.path.abspath(out)} ({wall:.0f} s)")


@app.command("published")
def published_(sweep_id: str, storage: str = typer.Option("gansweep-results", help=STORAGE_HELP),
               out: Optional[str] = typer.Option(None, help="also write the markdown to this file"),
               s3_endpoint_url: Optional[str] = typer.Option(None, envvar="GANSWEEP_S3_ENDPOINT_URL",
                                                             help=ENDPOINT_HELP)) -> None:
    """The sweep config's published table beside the measured values, with an absolute and an ordering verdict
    per figure (markdown)."""
    from gan_tasks.evaluation.report import sweep_comparison

    st = _sweeps_in(storage, s3_endpoint_url, sweep_id)
    try:
        _, _, md = sweep_comparison(st, sweep_id)
    except ValueError as e:
        _fail(str(e))
    print(md)
    if out:
        with open(out, "w") as f:
            f.write(md)
        print(f"written to {os.path.abspath(out)}")


@app.command("compare")
def compare_(sweep_a: str, sweep_b: str, storage: str = typer.Option("gansweep-results", help=STORAGE_HELP),
             s3_endpoint_url: Optional[str] = typer.Option(None, envvar="GANSWEEP_S3_ENDPOINT_URL",
                                                           help=ENDPOINT_HELP)) -> None:
    """Per (loss, optimizer, metric): the change from SWEEP_A to SWEEP_B, one-sided test in the metric's worse
    direction with Benjamini-Hochberg over all rows; missing cells and more failed seeds are regressions."""
    from gan_tasks.evaluation.compare import compare, detectable, regressions

    st = _sweeps_in(storage, s3_endpoint_url, sweep_a, sweep_b)
    cmp = compare(st, sweep_a, sweep_b)

    def num(v: float, fmt: str) -> str:
        return "-" if v != v else format(v, fmt)

    _aligned(("loss", "optimizer", "metric", "A", "B", "delta", "p", "p_adj", ""),
             [(r.loss, r.optimizer, r.metric, num(r.mean_a, ".4g"), num(r.mean_b, ".4g"), num(r.delta, "+.4g"),
               num(r.p_value, ".2g"), num(r.p_adj, ".2g"), ("REGRESSION " if r.flagged else "") + r.note)
              for r in cmp.itertuples()])
    det = detectable(cmp)
    if len(det):
        console.print(f"smallest worsening the seeds detect (80 % power, one-sided at level {det.level.iloc[0]:.2g} = "
                      "0.05 / tests):", soft_wrap=True, highlight=False, markup=False)
        _aligned(("metric", "seeds A", "seeds B", "s.d.", "metric units"),
                 [(r.metric, str(r.seeds_a), str(r.seeds_b), "not detectable" if r.shift_sd == float("inf") else
                   f"{r.shift_sd:.2g}", "-" if r.shift == float("inf") or r.shift != r.shift else f"{r.shift:.3g}")
                  for r in det.itertuples()])
    console.print(f"{len(regressions(cmp))} regression(s) (Benjamini-Hochberg over the night's tests; a cell "
                  "missing tonight or with more failed seeds counts)", soft_wrap=True, highlight=False, markup=False)


data_app = typer.Typer(no_args_is_help=True, help="Datasets in object storage.")
app.add_typer(data_app, name="data")


@data_app.command("upload")
def data_upload(name: str, path: str = typer.Argument(..., help="folder with the canonical files (mnist-fashion: "
                                                                "the folder holding mnist/ and fashion-mnist/)"),
                storage: str = typer.Option("gansweep-results", help=STORAGE_HELP),
                s3_endpoint_url: Optional[str] = typer.Option(None, envvar="GANSWEEP_S3_ENDPOINT_URL",
                                                              help=ENDPOINT_HELP)) -> None:
    """Check a dataset's canonical files (md5) and write it to <storage>/datasets/NAME/."""
    from gan_tasks.data.images import upload
    from gan_tasks.data.storage import Storage

    try:
        st = Storage.parse(storage, s3_endpoint_url)
        manifest = upload(st, name, path)
    except (ValueError, FileNotFoundError) as e:
        _fail(str(e))
    for key, f in manifest["files"].items():
        console.print(f"{key}: {tuple(f['shape'])}")
    console.print(f"uploaded {name} to {st.uri('datasets', name)}")


@data_app.command("add")
def data_add(name: str, src: str = typer.Argument(..., help="folder or fsspec URL (s3://bucket/prefix) of png / jpg / "
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
             storage: str = typer.Option("gansweep-results", help=STORAGE_HELP),
             s3_endpoint_url: Optional[str] = typer.Option(None, envvar="GANSWEEP_S3_ENDPOINT_URL",
                                                           help=ENDPOINT_HELP)) -> None:
    """Decode a folder of images once into versioned uint8 shards under <storage>/datasets/NAME/<id>/."""
    from gan_tasks.data.ingest import IngestOptions, add
    from gan_tasks.data.storage import Storage

    from gan_tasks.config import Limits

    opts = IngestOptions(size=size, mode=mode, crop=crop, labels=labels, test_fraction=test_fraction,
                         skip_bad=skip_bad, max_bytes=max_bytes or Limits().dataset_bytes)
    try:
        st = Storage.parse(storage, s3_endpoint_url)
        m = add(st, name, src, opts, test_from, st.endpoint_url or s3_endpoint_url)
    except (ValueError, FileNotFoundError) as e:
        _fail(str(e))
    counts = ", ".join(f"{s} {v['count']:,}" for s, v in m["splits"].items())
    console.print(f"added {name}@{m['id']}: {counts} images of {'x'.join(map(str, m['shape']))}, "
                  f"{len(m['classes'])} classes, {len(m['skipped'])} skipped; use `dataset: {name}` in a sweep",
                  soft_wrap=True, highlight=False, markup=False)


@data_app.command("ls")
def data_ls(storage: str = typer.Option("gansweep-results", help=STORAGE_HELP),
            s3_endpoint_url: Optional[str] = typer.Option(None, envvar="GANSWEEP_S3_ENDPOINT_URL",
                                                          help=ENDPOINT_HELP)) -> None:
    """Datasets added with `data add`: name, id (* current), images per split, shape, classes, size."""
    from gan_tasks.data.storage import Storage
    from gan_tasks.data.userdata import list_datasets

    try:
        rows = list_datasets(Storage.parse(storage, s3_endpoint_url))
    except ValueError as e:
        _fail(str(e))
    if not rows:
        console.print(f"no datasets in {storage}; add one with gansweep data add NAME SRC", soft_wrap=True)
        return
    _aligned(("name", "id", "images", "shape", "classes", "size"),
             [(r["name"], r["id"] + (" *" if r["current"] else ""),
               " / ".join(f"{s} {n:,}" for s, n in r["count"].items()), "x".join(map(str, r["shape"])),
               str(len(r["classes"])) if r["classes"] else "-", f"{r['bytes'] / 1e6:,.1f} MB") for r in rows])


evaluator_app = typer.Typer(no_args_is_help=True, help="In-domain feature extractors for image metrics.")
app.add_typer(evaluator_app, name="evaluator")


@evaluator_app.command("train")
def evaluator_train(dataset: str, storage: str = typer.Option("gansweep-results", help=STORAGE_HELP),
                    s3_endpoint_url: Optional[str] = typer.Option(None, envvar="GANSWEEP_S3_ENDPOINT_URL",
                                                                  help=ENDPOINT_HELP),
                    epochs: int = typer.Option(3, min=1, help="passes over the training split")) -> None:
    """Train DATASET's classifier (mnist, fashion-mnist) and store it under its content hash."""
    from gan_tasks.evaluation.classifier import CLASSIFIER_DATASETS, TrainSpec, check_dataset, train_and_store
    from gan_tasks.data.storage import Storage

    try:
        check_dataset(dataset)
        st = Storage.parse(storage, s3_endpoint_url)
        meta = train_and_store(st, dataset, TrainSpec(epochs=epochs))
    except (ValueError, FileNotFoundError) as e:
        _fail(str(e))
    need = CLASSIFIER_DATASETS.get(dataset)
    console.print(f"{dataset} classifier {meta['hash']}: test accuracy {meta['test_accuracy']:.2%} "
                  f"(required {need:.0%}) in {meta['train_seconds']:.0f} s; stored at "
                  f"{st.uri('evaluators', dataset, meta['hash'] + '.pt')}", highlight=False)
    if meta["test_accuracy"] < need:
        _fail(f"accuracy {meta['test_accuracy']:.2%} is below the required {need:.0%}", 1)

if __name__ == "__main__":
    sys.exit(app())
