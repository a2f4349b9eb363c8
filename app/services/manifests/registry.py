"""The kinds the manifest API serves, and how a `{kind}` path segment resolves to one."""

from __future__ import annotations

from typing import Any

from app.errors import BadRequest
from app.services.manifests.base import Broker

_BROKERS: dict[str, Broker[Any]] = {}
_KIND_MODULES = ("account", "user", "plugin", "smarterauthtoken", "secret", "connection")
_loaded = False


def register(broker: Broker[Any]) -> Broker[Any]:
    _BROKERS[broker.kind] = broker
    return broker


def unregister(kind: str) -> None:
    """Remove a kind (tests register temporary brokers)."""
    _BROKERS.pop(kind, None)


def brokers() -> list[Broker[Any]]:
    _load()
    return list(_BROKERS.values())


def _key(value: str) -> str:
    return value.replace("_", "").replace("-", "").lower()


def resolve(segment: str) -> Broker[Any]:
    """`Plugin`, `plugins`, `smarter_auth_token`, `SMARTERAUTHTOKENS`... -> the broker; else a 400."""
    _load()
    wanted = _key(segment)
    for broker in _BROKERS.values():
        kind = _key(broker.kind)
        if wanted in (kind, kind + "s", _key(broker.plural)):
            return broker
    supported = ", ".join(sorted(_BROKERS))
    raise BadRequest(f"Unsupported kind {segment!r}. Supported kinds: {supported}.")


def _load() -> None:
    # Importing the kind modules registers their brokers (kept lazy to avoid import cycles). A flag, not
    # "is the registry empty": one kind imported directly (or a test's broker) must not hide the others.
    global _loaded
    if _loaded:
        return
    import importlib

    for module in _KIND_MODULES:
        try:
            importlib.import_module(f"app.services.manifests.{module}")
        except ModuleNotFoundError as exc:  # a kind still being built
            if exc.name != f"app.services.manifests.{module}":
                raise
    _loaded = True
