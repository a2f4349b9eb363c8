"""The limits of a document a client sends (JSON or YAML), defined once for REST and manifests.

- YAML is read by a loader that refuses aliases, anchors and merge keys (`<<`): each is a way for a small
  document to become a huge value (a "billion laughs", a nested-merge bomb) and none is needed by a manifest.
- JSON and YAML values nest at most `MAX_DEPTH` levels of objects and arrays.
- A stored JSON field (static data, parameters, annotations) serialises to at most `MAX_STORED_BYTES`.

The loaders are plain functions of bytes: callers run them on a worker thread (`anyio.to_thread`), so no
document of the body limit (1 MiB) parses on the event loop, except a JSON document of at most
`INLINE_JSON_BYTES`: it parses in tens of microseconds, less than the hand-off to a thread and back costs.
"""

from __future__ import annotations

import json
from typing import Any, TypeVar

import pydantic_core
import yaml

MAX_DEPTH = 64
MAX_STORED_BYTES = 256 * 1024

# JSON bodies up to this size are parsed on the event loop (a manifest or a REST body is about 1 KiB).
INLINE_JSON_BYTES = 16 * 1024

TOO_DEEP = f"Values may nest at most {MAX_DEPTH} levels of objects and arrays."
TOO_BIG = f"The value is larger than {MAX_STORED_BYTES // 1024} KiB as JSON."

# libyaml's parser when it is installed (ten times faster than PyYAML's own); the same behaviour either way.
_Loader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_OPENING = (yaml.MappingStartEvent, yaml.SequenceStartEvent)
_CLOSING = (yaml.MappingEndEvent, yaml.SequenceEndEvent)

T = TypeVar("T")


class DocumentError(ValueError):
    """A document (or a value of one) that breaks a rule of this module; the message names the rule."""


class _NoMergeLoader(_Loader):  # type: ignore[misc,valid-type]
    """The safe loader, refusing merge keys (its only construct whose cost is not linear in the text)."""

    def flatten_mapping(self, node: yaml.MappingNode) -> None:
        for key, _ in node.value:
            if key.tag == "tag:yaml.org,2002:merge":
                raise DocumentError("YAML merge keys (<<) are not accepted: write the keys out.")
        super().flatten_mapping(node)


def _check_yaml_events(raw: bytes) -> None:
    """Refuse aliases, anchors and nesting beyond `MAX_DEPTH`, reading events (no values are built).

    This pass runs first because building values recurses: libyaml's composer in C (a crash on deep
    nesting) and its parser slow down with depth, so the walk stops at the first level too many.
    """
    depth = 0
    for event in yaml.parse(raw, Loader=_Loader):
        if isinstance(event, yaml.AliasEvent):
            raise DocumentError("YAML aliases (*name) are not accepted: write the value out.")
        if getattr(event, "anchor", None) is not None:
            raise DocumentError("YAML anchors (&name) are not accepted: write the value out.")
        if isinstance(event, _OPENING):
            depth += 1
            if depth > MAX_DEPTH:
                raise DocumentError(TOO_DEEP)
        elif isinstance(event, _CLOSING):
            depth -= 1


def load_yaml(raw: bytes) -> Any:
    """One YAML document as Python values (safe tags only); `DocumentError` for a refused construct,
    `yaml.YAMLError` for a syntax error."""
    _check_yaml_events(raw)
    return yaml.load(raw, Loader=_NoMergeLoader)  # noqa: S506 - a SafeLoader subclass


def load_json(raw: bytes) -> Any:
    """A JSON document as Python values; `DocumentError` beyond `MAX_DEPTH`, `ValueError` (a
    `json.JSONDecodeError` for syntax) when it is not JSON."""
    try:
        value = json.loads(raw)
    except RecursionError:
        raise DocumentError(TOO_DEEP) from None
    check_depth(value)
    return value


def check_depth(value: T) -> T:
    """`value` when its objects and arrays nest at most `MAX_DEPTH` levels, else `DocumentError`.

    Iterative (no recursion limit to meet) and it only descends into containers.
    """
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        container, depth = stack.pop()
        if not isinstance(container, dict | list):
            continue
        if depth > MAX_DEPTH:
            raise DocumentError(TOO_DEEP)
        items = container.values() if isinstance(container, dict) else container
        stack.extend((item, depth + 1) for item in items if isinstance(item, dict | list))
    return value


def check_stored(value: T) -> T:
    """A JSON value a column will store: at most `MAX_STORED_BYTES` serialised and `MAX_DEPTH` deep.

    The size is measured first, by pydantic-core's encoder (Rust; a 1 MiB value costs a few milliseconds
    where `json.dumps` takes several times that), so a large value is refused before the depth walk.
    """
    try:
        size = len(pydantic_core.to_json(value))
    except (ValueError, pydantic_core.PydanticSerializationError):  # its recursion guard, or not JSON
        check_depth(value)
        raise DocumentError("The value is not JSON (objects, arrays, strings, numbers, booleans, null).") from None
    if size > MAX_STORED_BYTES:
        raise DocumentError(TOO_BIG)
    return check_depth(value)
