"""A sweep file or mapping -> a validated SweepConfig: strict YAML, `--set key=value` overrides,
pydantic's errors formatted as one line per bad field; and the sweep id's check."""
from __future__ import annotations

import json
import time
from typing import Any

import yaml
from pydantic import ValidationError

from gan_tasks.config import strict_yaml
from gan_tasks.config.entries import NAME_MAX, _NAME, ConfigError
from gan_tasks.config.sweep import SweepConfig
from gan_tasks.config.trial import expand_grid
from gan_tasks.methods.params import FieldError


def check_sweep_id(sweep_id: str) -> str:
    """A sweep id becomes a storage folder: no '/', no '..', nothing a shell would mangle."""
    if not _NAME.fullmatch(sweep_id) or ".." in sweep_id or len(sweep_id) > 2 * NAME_MAX:
        raise ConfigError(f"sweep_id {sweep_id[:2 * NAME_MAX]!r}: use letters, digits, '-', '_', '.' (no '/' or "
                          f"'..'), at most {2 * NAME_MAX} characters")
    return sweep_id


def _format(err: ValidationError) -> str:
    lines, errors = [], err.errors()
    for e in errors:
        # A list with a bad entry also "has 0 items after validation": the entry's own error says it all.
        if e["type"] == "too_short" and any(len(o["loc"]) > len(e["loc"]) and o["loc"][:len(e["loc"])] == e["loc"]
                                            for o in errors):
            continue
        field = ".".join(str(p) for p in e["loc"])
        msg = e["msg"].removeprefix("Value error, ")
        err = (e.get("ctx") or {}).get("error")
        if isinstance(err, FieldError):  # a value below the field pydantic knows: join the two paths
            field, msg = ".".join(p for p in (field, err.path) if p), err.msg
        field = field or "(top level)"
        if e["type"] == "extra_forbidden":
            msg = "unknown key"
        lines.append(f"  {field}: {msg}")
    return "invalid sweep config:\n" + "\n".join(lines)


def parse_config(data: Any) -> SweepConfig:
    if not isinstance(data, dict):
        raise ConfigError("invalid sweep config: the top level must be a mapping")
    try:
        return SweepConfig.model_validate(data)
    except ValidationError as e:
        raise ConfigError(_format(e)) from None


def apply_overrides(data: Any, sets: list[str] | tuple[str, ...]) -> Any:
    """`--set key=value` over a loaded YAML mapping (a copy): the key a dotted path (`train.steps`,
    `grid.seed`, `grid.loss.1.params.a`, `model.params.hidden`), the value parsed as YAML
    (`[0,1]`, `1e-3`, `{name: adam}`). The result is validated exactly like the file."""
    data = json.loads(json.dumps(data)) if isinstance(data, dict) else data
    if not isinstance(data, dict):
        return data  # parse_config says what is wrong with the file
    for item in sets:
        key, eq, raw = item.partition("=")
        parts = key.strip().split(".")
        if not eq or not all(parts):
            raise ConfigError(f"--set {item!r}: expected key=value with a dotted key, e.g. train.steps=200")
        try:
            value = strict_yaml.loads(raw, f"--set {key}: the value {raw[:60]!r}")
        except strict_yaml.YamlError as e:
            raise ConfigError(str(e)) from None
        node: Any = data
        for i, part in enumerate(parts[:-1]):
            nxt = _child(node, part, key)
            if isinstance(nxt, str) and parts[i + 1] in ("name", "params"):
                nxt = {"name": nxt}  # `model: mlp` then `--set model.params.hidden=256`
            elif nxt is None:
                nxt = {}
            if not isinstance(nxt, (dict, list)):
                raise ConfigError(f"--set {key}: {'.'.join(parts[:i + 1])} is {nxt!r}, not a mapping or list")
            _put(node, part, nxt, key)
            node = nxt
        _put(node, parts[-1], value, key)
    return data


def _child(node: Any, part: str, key: str) -> Any:
    if isinstance(node, list):
        return node[_index(node, part, key)]
    return node.get(part)


def _put(node: Any, part: str, value: Any, key: str) -> None:
    if isinstance(node, list):
        node[_index(node, part, key)] = value
    else:
        node[part] = value


def _index(node: list, part: str, key: str) -> int:
    if not part.isdigit() or int(part) >= len(node):
        raise ConfigError(f"--set {key}: {part!r} is not an index of a list of {len(node)} entries (0..{len(node) - 1})")
    return int(part)


def resolve_dataset(data: Any, storage: Any) -> Any:
    """`dataset: NAME` or `NAME@ID` of a dataset added with `gansweep data add`, resolved from storage
    (NAME: its current id) to {name, id, shape, classes}; a built-in or already resolved one is kept."""
    from gan_tasks.data.datasets import DATASETS

    entry = data.get("dataset") if isinstance(data, dict) else None
    entry = {"name": entry} if isinstance(entry, str) else entry
    if not isinstance(entry, dict) or not isinstance(entry.get("name"), str) or entry.get("shape"):
        return data
    name, _, did = entry["name"].partition("@")
    from gan_tasks.data.userdata import read_index, upload_id

    if name in DATASETS:  # NAME@ID of an upload: checked against what storage holds, then the plain name
        if did and did != upload_id(storage, name):
            raise ConfigError(f"invalid sweep config:\n  dataset: {name}@{did}: storage {storage.url} holds "
                              f"{name}@{upload_id(storage, name) or '(not uploaded)'} (gansweep data ls)")
        return {**data, "dataset": {**entry, "name": name}} if did else data

    try:
        m = read_index(storage, name, did or entry.get("id"))
    except ValueError as e:
        raise ConfigError(f"invalid sweep config:\n  dataset: {e}") from None
    resolved = {"name": name, "id": m["id"], "shape": m["shape"], "classes": len(m["classes"])}
    return {**data, "dataset": {**entry, **resolved}}  # other keys (params) stay, for DatasetEntry to refuse


def load_config(path: str, overrides: list[str] | tuple[str, ...] = (), storage: Any = None) -> SweepConfig:
    """A sweep file (strict YAML: no duplicate keys, no alias bombs, UTF-8, <= 1 MB), --set, validated;
    with a storage, a dataset added with `gansweep data add` resolves to its id there."""
    try:
        data = strict_yaml.load(path)
    except strict_yaml.YamlError as e:
        raise ConfigError(str(e)) from None
    data = apply_overrides(data, overrides)
    if storage is None:
        return parse_config(data)
    sweep = parse_config(resolve_dataset(data, storage))
    check_fid_data(sweep, storage)
    return sweep


def check_fid_data(sweep: SweepConfig, storage: Any) -> None:
    """FID on a dataset added with `gansweep data add`: its reference side is at most its training images,
    which must be as many as the extractor's feature dimension (the built-ins have 50,000 or more)."""
    from gan_tasks.config.eval_options import EXTRACTORS
    from gan_tasks.data.userdata import read_index

    d, ev = sweep.dataset, sweep.evaluation
    extractor = ev.feature_extractor or ("classifier" if ev.classifier_dataset else None)
    if not d.id or extractor is None or "fid" not in ev.image_metrics:  # no FID measured on it
        return
    n, dim = read_index(storage, d.name, d.id)["splits"]["train"]["count"], EXTRACTORS.get(extractor).dim
    if n < dim:
        raise ConfigError(f"invalid sweep config:\n  dataset: {d.name}@{d.id} has {n:,} training images, fewer than "
                          f"the {dim} features of {extractor}: FID's reference covariance would be singular; use KID "
                          "(evaluation.image_metrics: [isc, kid, prc]) or add more images")


def dump_config(sweep: SweepConfig) -> str:
    return yaml.safe_dump(sweep.model_dump(mode="json"), sort_keys=False)


def same_trials(stored: bytes, sweep: SweepConfig) -> bool:
    """Whether a stored config.yaml means this sweep: read with today's parser, it expands to the same
    trial ids. Its text may differ (an older gansweep did not dump fields added since, or dumped them
    otherwise); a text that no longer parses, or means other trials, is another sweep."""
    try:
        return {t.trial_id for t in expand_grid(parse_config(yaml.safe_load(stored.decode())))} == \
            {t.trial_id for t in expand_grid(sweep)}
    except (ValueError, yaml.YAMLError):  # ConfigError, or bytes that are not even text
        return False


def extends(stored: bytes, sweep: SweepConfig) -> bool:
    """Whether a stored config.yaml is this sweep with a smaller search budget: raising `search.budget` adds
    settings and keeps every existing one (gan_tasks/config/search.py), so a re-run under the same id resumes."""
    try:
        old = parse_config(yaml.safe_load(stored.decode()))
    except (ValueError, yaml.YAMLError):
        return False
    if old.search is None or sweep.search is None or old.search.budget > sweep.search.budget:
        return False
    same = old.model_copy(update={"search": old.search.model_copy(update={"budget": sweep.search.budget})})
    return dump_config(same) == dump_config(sweep)


def utc_stamp() -> str:
    """Now, UTC, as sweep ids and benchmark runs name themselves: 20260101-020000."""
    return time.strftime("%Y%m%d-%H%M%S", time.gmtime())


def default_sweep_id(name: str) -> str:
    return f"{name}-{utc_stamp()}"
