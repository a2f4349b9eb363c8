"""The manifest protocol around the brokers: read a body (JSON or YAML), find the kind's broker,
validate the manifest, call the broker and wrap its answer in the journal envelope.

Bodies are parsed by `app.documents` (YAML without aliases, anchors or merge keys; at most 64 levels deep)
on a worker thread, then copied into plain JSON values under a node budget.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import date
from functools import lru_cache
from typing import Any

import anyio
import yaml
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from app import documents
from app.caching.registry import CacheRegistry
from app.config import Settings
from app.errors import (
    AppError,
    BadRequest,
    FieldError,
    Unauthorized,
    Unprocessable,
    field_errors,
)
from app.models import Account, ImmutableFieldError, User
from app.reads import Reader
from app.schemas.accounts import AccountRead
from app.schemas.journal import (
    Journaled,
    JournalMessage,
    JournalMetadata,
    KindInfo,
    ManifestDocument,
    ManifestList,
    ManifestListData,
    ManifestListMetadata,
    ManifestListTitle,
    ManifestValidation,
    WhoAmI,
    manifest_list_ends,
)
from app.schemas.manifests.base import SAMManifest
from app.schemas.users import UserRead
from app.services import permissions
from app.services.connections.pools import ConnectionPools
from app.services.manifests import registry
from app.services.manifests.base import Broker, BrokerContext, Column
from app.services.principals import Principal
from app.services.secrets.cipher import SecretCipher
from app.text import to_camel_case

YAML_MEDIA_TYPES = frozenset({"application/x-yaml", "application/yaml", "text/yaml", "text/x-yaml"})
NO_THING = "None"
# A real manifest has a few hundred nodes; static plugin data may have thousands.
MAX_NODES = 100_000
_NOT_A_MAPPING = "A manifest must be a mapping with apiVersion, kind, metadata and spec."
_TOO_BIG = f"The manifest is too large (over {MAX_NODES} values)."

# Packages whose versions `version/` reports (the original listed its own stack the same way).


# --- bodies -------------------------------------------------------------------------------------------


async def parse_document(raw: bytes, content_type: str | None) -> dict[str, Any]:
    """The body as a mapping of plain JSON values (dates as ISO strings); 400 when it is not one.

    On a worker thread, whatever the size: a body's cost is not its length (a 500-byte YAML document could
    take seconds before merge keys were refused), and the event loop serves everyone else. Only a small
    JSON body (`documents.INLINE_JSON_BYTES`, linear to parse) is read on the event loop: the hand-off to a
    thread would cost more than the parse.
    """
    if len(raw) <= documents.INLINE_JSON_BYTES and _is_json(content_type):
        return _parse_document(raw, content_type)
    return await anyio.to_thread.run_sync(_parse_document, raw, content_type)


def _is_json(content_type: str | None) -> bool:
    media = (content_type or "").split(";", 1)[0].strip().lower()
    return media == "application/json" or media.endswith("+json")


def _parse_document(raw: bytes, content_type: str | None) -> dict[str, Any]:
    if not raw.strip():
        raise BadRequest("The request body is empty: send a manifest as JSON or YAML.")
    media = (content_type or "").split(";", 1)[0].strip().lower()
    try:
        if media in YAML_MEDIA_TYPES:
            loaded = _load_yaml(raw)
        elif _is_json(media):
            loaded = _load_json(raw)
        else:  # no or another content type (curl's default is form-encoded): JSON, else YAML
            try:
                loaded = _load_json(raw)
            except BadRequest:
                loaded = _load_yaml(raw)
    except documents.DocumentError as exc:
        raise BadRequest(str(exc)) from None
    if not isinstance(loaded, dict):
        raise BadRequest(_NOT_A_MAPPING)
    plain: dict[str, Any] = _plain(loaded, 0, [MAX_NODES])
    return plain


def _load_json(raw: bytes) -> Any:
    try:
        return documents.load_json(raw)
    except documents.DocumentError:
        raise
    except json.JSONDecodeError as exc:
        # Position only: the message never quotes the body.
        raise BadRequest(f"The body is not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno}).") from None
    except (ValueError, UnicodeDecodeError):  # e.g. an integer beyond Python's digit limit, bad encoding
        raise BadRequest("The body is not valid JSON.") from None


def _load_yaml(raw: bytes) -> Any:
    try:
        return documents.load_yaml(raw)
    except yaml.MarkedYAMLError as exc:
        where = f" (line {exc.problem_mark.line + 1}, column {exc.problem_mark.column + 1})" if exc.problem_mark else ""
        raise BadRequest(
            f"The body is not valid YAML: {exc.problem or exc.context or 'syntax error'}{where}."
        ) from None
    except documents.DocumentError:
        raise
    except (yaml.YAMLError, ValueError):
        raise BadRequest("The body is not valid YAML.") from None


def _plain(value: Any, depth: int, budget: list[int]) -> Any:
    budget[0] -= 1
    if budget[0] < 0:
        raise BadRequest(_TOO_BIG)
    if depth > documents.MAX_DEPTH:  # the loaders refuse deeper documents; values of other origins too
        raise BadRequest(documents.TOO_DEEP)
    if isinstance(value, dict):
        return {_plain_key(k): _plain(v, depth + 1, budget) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_plain(v, depth + 1, budget) for v in value]
    if isinstance(value, str):
        return _text(value)
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise BadRequest("Numbers must be finite (no NaN or Infinity).")
        return value
    if isinstance(value, date):  # datetime too: YAML reads unquoted dates, as the SDK does, as ISO text
        return value.isoformat()
    raise BadRequest(f"Values of YAML type {type(value).__name__} are not supported in manifests.")


def _text(value: str) -> str:
    # PostgreSQL cannot store NUL in text or JSONB; refusing it here keeps both backends alike.
    if "\x00" in value:
        raise BadRequest("Text in a manifest may not contain NUL characters.")
    return value


def _plain_key(key: Any) -> str:
    if isinstance(key, str):
        return _text(key)
    if isinstance(key, bool) or key is None:
        return json.dumps(key)
    if isinstance(key, int | float):
        return str(key)
    if isinstance(key, date):
        return key.isoformat()
    raise BadRequest("Mapping keys must be strings.")


# --- manifests ----------------------------------------------------------------------------------------


def broker_for(document: Mapping[str, Any]) -> Broker[Any]:
    """The broker of the manifest's `kind` (422 when absent or misspelt, 400 when not served)."""
    kind = document.get("kind")
    if kind is None:
        raise Unprocessable.field("kind", "The manifest has no kind (e.g. Plugin).", kind="missing")
    if not isinstance(kind, str):
        raise Unprocessable.field("kind", "kind must be a string.", kind="string_type")
    broker = registry.resolve(kind)
    if kind != broker.kind:  # path segments are lenient; a manifest names its kind exactly
        raise Unprocessable.field("kind", f"The kind is spelt {broker.kind!r}.", kind="literal_error")
    return broker


def invalid_manifest(exc: ValidationError, *, prefix: tuple[str, ...] = ("body",)) -> Unprocessable:
    errors = field_errors(exc.errors(include_url=False, include_input=False, include_context=False), prefix=prefix)
    fields = "; ".join(f"{'.'.join(str(p) for p in e.loc[1:]) or 'manifest'}: {e.msg}" for e in errors[:5])
    more = f" (and {len(errors) - 5} more)" if len(errors) > 5 else ""
    return Unprocessable(f"Invalid manifest: {fields}{more}.", errors=errors)


def load_manifest(broker: Broker[Any], document: Mapping[str, Any]) -> SAMManifest:
    try:
        return broker.manifest_model.model_validate(document)
    except ValidationError as exc:
        raise invalid_manifest(exc) from None


async def read_manifest(
    raw: bytes, content_type: str | None, *, on_kind: Callable[[str], None] | None = None
) -> tuple[Broker[Any], SAMManifest]:
    """Parse, find the broker (reporting its kind as soon as it is known) and validate."""
    document = await parse_document(raw, content_type)
    broker = broker_for(document)
    if on_kind is not None:
        on_kind(broker.kind)
    return broker, load_manifest(broker, document)


@contextmanager
def broker_errors() -> Iterator[None]:
    """Errors a broker may let through that are the client's fault, as 422s (never a 500)."""
    try:
        yield
    except ValidationError as exc:  # e.g. a service input model built from the manifest
        raise invalid_manifest(exc) from None
    except ImmutableFieldError as exc:
        raise Unprocessable.field(to_camel_case(exc.field), str(exc)) from None


# --- context ------------------------------------------------------------------------------------------


async def broker_context(
    session: AsyncSession,
    principal: Principal,
    settings: Settings,
    *,
    account_number: str | None,
    reader: Reader,
    caches: CacheRegistry,
    cipher: SecretCipher | None = None,
    pools: ConnectionPools | None = None,
) -> BrokerContext:
    try:
        acting = await permissions.acting_account(session, principal, account_number)
    except permissions.NoActingAccount:
        acting = None  # `get` and `describe` of what they can read still answer
    return BrokerContext(
        session, principal, settings, acting, reader, caches, cipher or SecretCipher.unconfigured(), pools
    )


# --- commands -----------------------------------------------------------------------------------------


def _meta(command: str, thing: str) -> JournalMetadata:
    return JournalMetadata(command=command, thing=thing)


async def validate(raw: bytes, content_type: str | None) -> Journaled[ManifestValidation]:
    """Check a manifest without touching the database: any problem is a 200 with `valid: false`."""
    thing = NO_THING

    def found(kind: str) -> None:
        nonlocal thing
        thing = kind

    try:
        broker, manifest = await read_manifest(raw, content_type, on_kind=found)
    except AppError as error:
        errors = error.errors or [FieldError(loc=["body"], msg=error.detail, type=error.slug)]
        result = ManifestValidation(valid=False, errors=errors)
        return Journaled(metadata=_meta("validate", thing), data=result, message=f"Invalid manifest: {error.detail}")
    message = f"{broker.kind} {manifest.metadata.name} is valid"
    return Journaled(metadata=_meta("validate", thing), data=ManifestValidation(valid=True), message=message)


async def apply(ctx: BrokerContext, broker: Broker[Any], manifest: SAMManifest) -> Journaled[dict[str, Any]]:
    with broker_errors():
        result = await broker.apply(ctx, manifest)
    message = f"{broker.kind} {result.name} applied successfully"
    return Journaled(metadata=_meta("apply", broker.kind), data=result.data, message=message)


async def get(ctx: BrokerContext, broker: Broker[Any], name: str | None) -> bytes:
    """The `get` response's JSON (a `Journaled[ManifestList]`), its rows as the broker gives them in JSON."""
    with broker_errors():
        rows = await broker.get_json(ctx, name)
    head, tail = _table_ends(broker.kind, broker.plural, tuple(broker.columns), name, len(rows))
    return b"".join((head, b",".join(rows), tail))


@lru_cache(maxsize=256)
def _table_ends(
    kind: str, plural: str, columns: tuple[Column, ...], name: str | None, count: int
) -> tuple[bytes, bytes]:
    """The `get` envelope around a table's rows (`manifest_list_ends`): the same for the same kind, name filter
    and count, and building its models and dumping them cost a tenth of a cached `get/plugins/`."""
    titles = [ManifestListTitle(name=c.name, type=c.type) for c in columns]
    table = ManifestList(
        kind=kind, name=name, metadata=ManifestListMetadata(count=count), data=ManifestListData(titles=titles, items=[])
    )
    noun = kind if count == 1 else plural
    envelope = Journaled[ManifestList](metadata=_meta("get", kind), data=table, message=f"Got {count} {noun}")
    return manifest_list_ends(envelope)


async def describe(ctx: BrokerContext, broker: Broker[Any], name: str) -> Journaled[ManifestDocument]:
    with broker_errors():
        document = await broker.describe(ctx, name)
    return Journaled(
        metadata=_meta("describe", broker.kind),
        data=ManifestDocument.model_validate(document),
        message=f"{broker.kind} {name} described successfully",
    )


async def delete(ctx: BrokerContext, broker: Broker[Any], name: str) -> JournalMessage:
    with broker_errors():
        await broker.delete(ctx, name)
    return JournalMessage(metadata=_meta("delete", broker.kind), message=f"{broker.kind} {name} deleted successfully")


async def deploy(ctx: BrokerContext, broker: Broker[Any], name: str, *, undo: bool = False) -> JournalMessage:
    command = "undeploy" if undo else "deploy"
    with broker_errors():
        said = await (broker.undeploy(ctx, name) if undo else broker.deploy(ctx, name))
    return JournalMessage(
        metadata=_meta(command, broker.kind), message=said or f"{broker.kind} {name} {command}ed successfully"
    )


def logs(broker: Broker[Any], name: str | None) -> Journaled[dict[str, Any]]:
    """No kind in scope keeps logs: an empty `data` for every kind (the SDK expects an object)."""
    subject = f"{broker.kind} {name}" if name else broker.plural
    return Journaled(metadata=_meta("logs", broker.kind), data={}, message=f"No logs are kept for {subject}")


def example_manifest(broker: Broker[Any]) -> Journaled[ManifestDocument]:
    return Journaled(
        metadata=_meta("example_manifest", broker.kind),
        data=ManifestDocument.model_validate(broker.example_manifest()),
        message=f"Example {broker.kind} manifest",
    )


def json_schema(broker: Broker[Any]) -> Journaled[dict[str, Any]]:
    return Journaled(
        metadata=_meta("json_schema", broker.kind),
        data=broker.json_schema(),
        message=f"JSON Schema of the {broker.kind} manifest",
    )


def kinds() -> Journaled[list[KindInfo]]:
    infos = [
        KindInfo(
            singular=b.kind,
            plural=b.plural,
            api_kind=b.kind,
            display=b.kind,
            display_plural=b.plural,
            deployable=b.deployable,
        )
        for b in registry.brokers()
    ]
    noun = "kind" if len(infos) == 1 else "kinds"
    return Journaled(metadata=_meta("resources", NO_THING), data=infos, message=f"{len(infos)} {noun}")


async def whoami(
    session: AsyncSession, principal: Principal, settings: Settings, *, account_number: str | None
) -> Journaled[WhoAmI]:
    """The caller and the account they act in (`permissions.acting_account`: a key's is its owner's)."""
    acting = await permissions.acting_account(session, principal, account_number)
    user = await session.get(User, principal.user_id)
    statement = select(Account).where(Account.id == acting.account_id).options(selectinload(Account.tag_links))
    account = (await session.execute(statement)).scalar_one_or_none()
    if user is None or account is None:  # deleted since the credential was checked
        raise Unauthorized("User inactive or deleted.")
    data = WhoAmI(
        user=UserRead.model_validate(user),
        account=AccountRead.model_validate(account),
        environment=settings.environment,
    )
    return Journaled(metadata=_meta("whoami", NO_THING), data=data, message=f"You are {user.username}")
