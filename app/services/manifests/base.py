"""The broker interface of the manifest API (`/api/v1/cli/`), one broker per kind.

A broker translates manifests to calls of the domain services (which hold every rule; brokers add
none of their own) and domain rows back to manifests. The protocol router resolves the kind, builds
the `BrokerContext`, calls the broker and wraps the result in the journal envelope.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar, Generic, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from app.caching.registry import CacheRegistry
from app.config import Settings
from app.errors import BadRequest
from app.reads import Reader
from app.schemas.journal import table_row_json
from app.schemas.manifests.base import SAMManifest
from app.services.connections.pools import ConnectionPools
from app.services.permissions import Acting
from app.services.principals import Principal
from app.services.secrets.cipher import SecretCipher

M = TypeVar("M", bound=SAMManifest)


@dataclass(frozen=True)
class BrokerContext:
    session: AsyncSession
    principal: Principal
    settings: Settings
    # The account the caller acts in (`permissions.acting_account`); None if they have none and named none.
    acting: Acting | None
    # The runtime's hot reads and caches (passed in: services never import `app.runtime`), so a kind whose
    # rows are cached (plugins) answers `get` from its snapshots rather than re-reading every row.
    reader: Reader
    caches: CacheRegistry
    # The process's secrets cipher (the runtime's); kinds that hold secret values use it.
    cipher: SecretCipher = field(default_factory=SecretCipher.unconfigured)
    # The process's connection pools (the runtime's): deleting a connection disposes of its engine.
    pools: ConnectionPools | None = None


@dataclass(frozen=True)
class ApplyResult:
    """What `apply` did: the envelope's message says "<Kind> <name> applied successfully"."""

    name: str
    created: bool
    data: dict[str, Any]


@dataclass(frozen=True)
class Column:
    """A column of the `get` table (the SDK's ManifestListTitle: name and a Django field type name)."""

    name: str
    type: str


class Broker(ABC, Generic[M]):
    kind: ClassVar[str]  # e.g. "Plugin"
    plural: ClassVar[str]  # e.g. "Plugins"
    manifest_model: ClassVar[type[SAMManifest]]
    deployable: ClassVar[bool] = False
    columns: ClassVar[tuple[Column, ...]]

    @abstractmethod
    async def apply(self, ctx: BrokerContext, manifest: M) -> ApplyResult:
        """Create or update (idempotent: the same manifest twice changes nothing the second time)."""

    @abstractmethod
    async def describe(self, ctx: BrokerContext, name: str) -> dict[str, Any]:
        """The manifest (camelCase dict) with its `status`; 404 when absent or not readable."""

    @abstractmethod
    async def get(self, ctx: BrokerContext, name: str | None) -> list[dict[str, Any]]:
        """Rows of the `get` table (keys as in `columns`) for what the caller can read, filtered by name."""

    async def get_json(self, ctx: BrokerContext, name: str | None) -> list[bytes]:
        """The rows of `get` as JSON; a kind that keeps its rows as JSON answers from there."""
        return [table_row_json(row) for row in await self.get(ctx, name)]

    @abstractmethod
    async def delete(self, ctx: BrokerContext, name: str) -> None:
        """Delete with ownership scope: 404 outside read scope, 403 when readable but not owned."""

    @abstractmethod
    def example_manifest(self) -> dict[str, Any]:
        """A manifest that applies cleanly and validates against the SDK's SAM model."""

    async def deploy(self, ctx: BrokerContext, name: str) -> str:
        raise BadRequest(f"{self.kind} resources cannot be deployed.")

    async def undeploy(self, ctx: BrokerContext, name: str) -> str:
        raise BadRequest(f"{self.kind} resources cannot be undeployed.")

    def json_schema(self) -> dict[str, Any]:
        return self.manifest_model.model_json_schema(by_alias=True)
