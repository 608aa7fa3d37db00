"""A sweep's plugins: the `plugins:` pins, the metrics it names (`evaluation.metrics`), and which plugin
entries it uses, with their distribution, version and code hash (`gansweep validate` prints them).

Plugin names resolve like built-in ones (gan_tasks/methods/registry.py): by the time a sweep is
validated, every plugin entry it names has been imported and checked.
"""
from __future__ import annotations

from importlib import metadata
from typing import Any

from packaging.requirements import InvalidRequirement, Requirement

from gan_tasks.config import scores
from gan_tasks.config.early_stop import DIRECTIONS
from gan_tasks.methods.catalog import LOSSES, MODELS, OPTIMIZERS
from gan_tasks.methods.metric_specs import METRICS
from gan_tasks.methods.params import FieldError
from gan_tasks.methods.plugins import Provider
from gan_tasks.methods.programs import PROGRAMS


def check_pin(i: int, pin: Any) -> str:
    """One `plugins:` entry: a requirement (`my-gan-lib>=0.2`) that the installed distributions meet."""
    where = str(i)  # below the field `plugins` (config/load.py joins the two)
    try:
        req = Requirement(pin) if isinstance(pin, str) else None
    except InvalidRequirement as e:
        raise FieldError(where, f"{pin!r} is not a requirement like 'my-gan-lib>=0.2': {e}") from None
    if req is None:
        raise FieldError(where, f"expected a requirement like 'my-gan-lib>=0.2', got {pin!r}")
    try:
        version = metadata.version(req.name)
    except metadata.PackageNotFoundError:
        raise FieldError(where, f"{pin!r}: distribution {req.name!r} is not installed "
                                f"(pip install '{pin}')") from None
    if not req.specifier.contains(version, prereleases=True):
        raise FieldError(where, f"{pin!r} is not met: {req.name} {version} is installed")
    return pin


def check_metrics(metrics: tuple, kind: str) -> None:
    """evaluation.metrics against the dataset's kind of data; their outputs join the ranked metrics
    (early_stop.DIRECTIONS, the one table of directions) unless one would change a direction there."""
    for i, entry in enumerate(metrics):
        spec = METRICS.get(entry.name)
        if kind not in spec.data_kinds:
            raise FieldError(f"evaluation.metrics.{i}", f"metric {entry.name!r} measures "
                                                        f"{'/'.join(spec.data_kinds)} data; this dataset is {kind}")
        clash = sorted(o for o, up in spec.outputs.items() if DIRECTIONS.get(o, up) != up)
        if clash:
            raise FieldError(f"evaluation.metrics.{i}", f"metric {entry.name!r} output {clash[0]!r} is already "
                                                        "ranked the other way; name it differently")
        for output, up in spec.outputs.items():
            scores.declare(output, up, *spec.bounds.get(output, (None, None)))


def used_plugins(sweep: Any) -> list[tuple[str, str, Provider]]:
    """(kind, name, provider) of every plugin entry the sweep uses, in a stable order."""
    used = [("program", PROGRAMS, sweep.program), ("model", MODELS, sweep.model.name)]
    used += [("loss", LOSSES, loss.name) for loss, _ in sweep.grid.pairs()]
    used += [("optimizer", OPTIMIZERS, opt.name) for _, opt in sweep.grid.pairs()]
    used += [("metric", METRICS, m.name) for m in sweep.evaluation.metrics]
    out, seen = [], set()
    for kind, reg, name in used:
        provider = reg.provider(name)
        if provider is not None and (kind, name) not in seen:
            seen.add((kind, name))
            out.append((kind, name, provider))
    return out
