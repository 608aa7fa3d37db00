"""`gansweep list`: what a sweep file may name, with each parameter's type, range and default; `--markdown`:
the configuration reference (docs/reference.md, gan_tasks/config/reference.py)."""
from __future__ import annotations

from typing import Optional

import typer
from rich.table import Table

from flows.cli.common import console
from gan_tasks.errors import UserError


def list_(what: Optional[str] = typer.Argument(None, help="programs | losses | optimizers | models | datasets | "
                                                           "metrics | feature-extractors | tricks | train | evaluation | "
                                                           "resources | limits"),
          markdown: bool = typer.Option(False, "--markdown", help="the configuration reference in Markdown, built-ins "
                                                                  "only (docs/reference.md); with WHAT, its section")) -> None:
    """List registered names with a one-line description and each parameter's type, range and default."""
    if markdown:
        from gan_tasks.config.reference import REGISTRIES, SECTIONS, reference_markdown, section_markdown

        if what is not None and what not in {*SECTIONS, *REGISTRIES}:
            raise UserError(f"no reference section {what!r}; valid: {', '.join([*SECTIONS, *REGISTRIES])}")
        print(reference_markdown() if what is None else section_markdown(what), end="")
        return
    if what is None:
        raise UserError("name what to list (programs, losses, ...), or give --markdown for the whole reference")
    from gan_tasks.methods.catalog import LOSSES, MODELS, OPTIMIZERS
    from gan_tasks.methods.trick_settings import Tricks
    from gan_tasks.config import EvalConfig, Limits, Resources, TrainConfig
    from gan_tasks.config.reference import entry_defaults
    from gan_tasks.data.datasets import DATASETS
    from gan_tasks.methods.params import describe_field, describe_schema

    from gan_tasks.methods.programs import PROGRAMS

    registries = {"programs": PROGRAMS, "losses": LOSSES, "optimizers": OPTIMIZERS, "models": MODELS,
                  "datasets": DATASETS}
    sections = {"tricks": Tricks, "train": TrainConfig, "evaluation": EvalConfig, "resources": Resources,
                "limits": Limits}
    from gan_tasks.methods.metric_specs import EXTRACTORS

    special = {"metrics", "feature-extractors"}
    if what not in [*registries, *special, *sections]:
        raise UserError(f"cannot list {what!r}; valid: {', '.join([*registries, *sorted(special), *sections])}")
    if what == "metrics":
        from gan_tasks.methods.metric_specs import METRICS

        rows = [(n, d, f"outputs: {', '.join(METRICS.get(n).outputs)}; measured on its datasets")
                for n, d in METRICS.describe().items()] + _plugin_rows(METRICS)
    elif what in sections:  # the sections of a sweep file: each field's type, bounds and default
        rows = [(n, f"{f.description or ''} (default {f.default})".lstrip(), describe_field(f))
                for n, f in sections[what].model_fields.items()]
    elif what == "feature-extractors":
        rows = [(n, d, EXTRACTORS.get(n).summary) for n, d in EXTRACTORS.describe().items()] + _plugin_rows(EXTRACTORS)
    elif what == "programs":
        rows = [(n, d, PROGRAMS.get(n).summary) for n, d in PROGRAMS.describe().items()] + _plugin_rows(PROGRAMS)
    else:
        reg = registries[what]
        rows = [(n, d, describe_schema(reg.get(n).schema, entry_defaults(reg.get(n)))) for n, d in reg.describe().items()]
        rows += _plugin_rows(reg) if reg.group else []
    third = {"programs": "metrics; combinations", "feature-extractors": "features"}.get(what, "type, range" if what in sections else
                                                    "parameters: type, range (default)")
    table = Table("name", "description", third,
                  show_lines=True)
    for row in rows:
        table.add_row(*row)
    console.print(table)


def _plugin_rows(reg) -> list[tuple[str, str, str]]:
    """One row per plugin entry point of the registry: its doc and parameters, or BROKEN with the error."""
    from rich.markup import escape

    from gan_tasks.config.reference import entry_defaults
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
                 + describe_schema(spec.schema, entry_defaults(spec)))
        rows.append((name, escape(f"plugin {where}: {reg.doc(name)}"), escape(third)))
    return rows


def register(app: typer.Typer) -> None:
    app.command("list")(list_)
