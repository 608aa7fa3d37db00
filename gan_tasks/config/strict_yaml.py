"""YAML for sweep files: safe, and strict about what PyYAML lets through silently.

A duplicate key (`steps: 30` then `steps: 40`) is an error naming the key and both lines, not the
second value winning; aliases may not expand to more than MAX_NODES values (a "billion laughs"
document is a few hundred bytes); the file must be UTF-8 and at most MAX_BYTES long.
"""
from __future__ import annotations

import os
from typing import Any

import yaml

# 1 MB: the largest real sweep file is a few kB; a 10 MB `name` is not a sweep.
MAX_BYTES = 1 << 20
# 100k values after alias expansion: a grid of 10,000 seeds is 10k; a YAML bomb is billions.
MAX_NODES = 100_000


class YamlError(ValueError):
    pass


class _Loader(yaml.SafeLoader):
    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:  # the keys as written; `<<` merge keys may be overridden
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key, line = self.construct_object(key_node, deep=True), key_node.start_mark.line + 1
            try:
                first = seen.get(key)
            except TypeError:
                raise YamlError(f"line {line}: a mapping key must be a plain value, got {key_node.tag}") from None
            if first is not None:
                raise YamlError(f"duplicate key {key!r} at line {line} (first at line {first}); remove one")
            seen[key] = line
        return super().construct_mapping(node, deep)


def _expanded(node: yaml.Node, memo: dict[int, int]) -> int:
    """The number of values `node` stands for with every alias expanded; linear in the node graph."""
    if id(node) in memo:
        return memo[id(node)]
    memo[id(node)] = MAX_NODES + 1  # a recursive alias counts as unbounded
    children = [c for kv in node.value for c in kv] if isinstance(node, yaml.MappingNode) else \
        node.value if isinstance(node, yaml.SequenceNode) else []
    memo[id(node)] = 1 + sum(_expanded(c, memo) for c in children)
    return memo[id(node)]


def loads(text: str, where: str = "<string>") -> Any:
    """One YAML document, strictly (see the module doc); errors name `where`."""
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        n = _expanded(node, {})
        if n > MAX_NODES:
            raise YamlError(f"{where}: more than {MAX_NODES:,} values once its aliases are expanded "
                            "(a YAML alias bomb?)")
        return loader.construct_document(node)
    except YamlError as e:
        raise YamlError(f"{where}: {e}" if not str(e).startswith(where) else str(e)) from None
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        at = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        raise YamlError(f"{where} is not valid YAML: {e.problem or e.context}{at}") from None
    except yaml.YAMLError as e:
        raise YamlError(f"{where} is not valid YAML: {e}") from None
    finally:
        loader.dispose()


def load(path: str) -> Any:
    """A sweep file: at most MAX_BYTES, UTF-8, then loads()."""
    try:
        size = os.path.getsize(path)
        if size > MAX_BYTES:
            raise YamlError(f"config {path} is {size / 1e6:.1f} MB; a sweep file may be at most "
                            f"{MAX_BYTES / 1e6:.1f} MB")
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except UnicodeDecodeError as e:
        raise YamlError(f"config {path} is not UTF-8 text (byte {e.start}: {e.object[e.start:e.start + 1]!r})") \
            from None
    except OSError as e:
        raise YamlError(f"cannot read config {path}: {e.strerror}") from None
    return loads(text, f"config {path}")
