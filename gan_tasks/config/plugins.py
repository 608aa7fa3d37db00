"""A sweep's plugins: the `plugins:` pins, the metrics it names (`evaluation.metrics`), and which plugin
entries it uses, with their distribution, version and code hash (`gansweep validate` prints them; each
trial carries those it uses as PluginCode, part of its id and its row: docs/plugins.md).

Plugin names resolve like built-in ones (gan_tasks/methods/registry.py): by the time a sweep is
validated, every plugin entry it names has been imported and checked.
"""
from __future__ import annotations

from importlib import metadata
from typing import Any

from packaging.requirements import InvalidRequirement, Requirement

from gan_tasks.config import scores
from gan_tasks.config.early_stop import DIRECTIONS
from gan_tasks.config.entries import _Frozen
from gan_tasks.methods.catalog import LOSSES, MODELS, OPTIMIZERS
from gan_tasks.methods.metric_specs import EXTRACTORS, METRICS
from gan_tasks.methods.params import FieldError
from gan_tasks.methods.plugins import GROUPS, Provider
from gan_tasks.methods.programs import PROGRAMS
from gan_tasks.methods.registry import Registry

REGISTRIES: dict[str, Registry] = {"program": PROGRAMS, "model": MODELS, "loss": LOSSES, "optimizer": OPTIMIZERS,
                                   "metric": METRICS, "feature extractor": EXTRACTORS}


def check_pin(i: int, pin: Any) -> str:
    """One `plugins:` entry: a requirement (`my-gan-lib>=0.2`) that the installed distributions meet."""
    where = str(i)  # below the field `plugins` (config/load.py joins the two)
    try:
        req = Requirement(pin) if isinstance(pin, str) else None
    except InvalidRequirement as e:
        raise FieldError(where, f"{pin!r} is not a requirement like 'my-gan-lib>=0.2': {str(e).splitlines()[0]}") from None
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


def check_requirement(i: int, req: Any) -> str:
    """One `pip:` entry: a requirement pip can install on the workers (not checked against this environment)."""
    try:
        if isinstance(req, str):
            Requirement(req)
            return req
    except InvalidRequirement as e:
        raise FieldError(str(i), f"{req!r} is not a requirement like 'scikit-learn>=1.4': {str(e).splitlines()[0]}") from None
    raise FieldError(str(i), f"expected a requirement like 'scikit-learn>=1.4', got {req!r}")


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
    if sweep.evaluation.feature_extractor:
        used.append(("feature extractor", EXTRACTORS, sweep.evaluation.feature_extractor))
    out, seen = [], set()
    for kind, reg, name in used:
        provider = reg.provider(name)
        if provider is not None and (kind, name) not in seen:
            seen.add((kind, name))
            out.append((kind, name, provider))
    return out


class PluginCode(_Frozen):
    """One plugin entry a trial uses, as the driver resolved it: part of the trial's id and row."""

    kind: str  # loss | model | optimizer | program | metric | feature extractor
    name: str  # the registered name
    dist: str  # the distribution that provides it, and its version
    version: str
    code_hash: str  # plugins.code_hash of its top-level package
    entry_point: str  # "module:attr" of its spec

    @property
    def label(self) -> str:
        return f"{self.dist} {self.version} code {self.code_hash}"

    def provider(self) -> Provider:
        return Provider(self.name, GROUPS[self.kind], self.entry_point, self.dist, self.version)


def sweep_plugins(sweep: Any) -> dict[tuple[str, str], PluginCode]:
    """(kind, name) -> PluginCode of every plugin entry the sweep uses; each package hashed once."""
    hashes: dict[str, str] = {}
    out = {}
    for kind, name, p in used_plugins(sweep):
        where = str(p.package_dir)
        if where not in hashes:
            hashes[where] = p.code_hash()
        out[(kind, name)] = PluginCode(kind=kind, name=name, dist=p.dist, version=p.version,
                                       code_hash=hashes[where], entry_point=p.value)
    return out


def trial_plugins(codes: dict[tuple[str, str], PluginCode], loss: str, optimizer: str) -> tuple[PluginCode, ...]:
    """The entries of one trial: the sweep's program, model, metrics and feature extractor, and its own
    loss and optimizer."""
    own = {("loss", loss), ("optimizer", optimizer)}
    return tuple(c for (kind, name), c in sorted(codes.items())
                 if kind in ("program", "model", "metric", "feature extractor") or (kind, name) in own)


def adopt(codes: tuple[PluginCode, ...]) -> None:
    """Register the entries a driver resolved, where their distribution's metadata is not installed
    (a worker that got the code shipped, docs/plugins.md): each imported from its entry point."""
    for c in codes:
        REGISTRIES[c.kind].adopt(c.name, c.provider())
