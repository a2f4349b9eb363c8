"""The manifest API (Smarter CLI/SDK protocol): `/api/v1/cli/`.

Every response is a journal envelope: errors too, rendered by `app.http_errors` with the context this
router's route class (`JournalRoute`) gives each request. Reads answer both GET and
POST (the SDK POSTs everything); each method is its own route so operation ids stay unique.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import suppress
from functools import cached_property
from http import HTTPStatus
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Path, Query, Request, Response
from starlette.types import Receive, Scope, Send

from app.deps import PrincipalDep, RuntimeDep, SessionDep, runtime_of
from app.errors import BadRequest
from app.http_errors import CLI_PREFIX, JOURNAL_KEY, JournalContext, command_of, name_thing
from app.routers.base import DocumentRoute, resource_router
from app.schemas.journal import (
    Journaled,
    JournalErrorResponse,
    JournalMessage,
    KindInfo,
    ManifestDocument,
    ManifestList,
    ManifestValidation,
    PlatformStatus,
    PlatformVersion,
    WhoAmI,
)
from app.services.manifests import platform_status, protocol, registry
from app.services.manifests.base import Broker, BrokerContext


def journal_errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """`responses=` entries for error statuses, rendered as journal error envelopes."""
    return {
        status: {"description": HTTPStatus(status).phrase, "model": JournalErrorResponse}
        for status in sorted(set(statuses))
    }


class JournalRoute(DocumentRoute):
    """A manifest API route: its errors are journal envelopes naming its command (and the kind, when the
    path names one), from before its first dependency runs (a 401 carries them) to after its commit.

    The context goes in the request's scope as the route starts; the exceptions themselves are left alone,
    so they leave the route's dependencies (the session rolls back) before a handler answers them.
    """

    @cached_property
    def command(self) -> str:
        return command_of(self.path)

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        context = JournalContext(self.command)
        segment = scope.get("path_params", {}).get("kind")
        if segment:
            with suppress(BadRequest):  # an unknown kind is reported by `kind_broker`, after authentication
                context.thing = registry.resolve(segment).kind
        scope[JOURNAL_KEY] = context
        await super().handle(scope, receive, send)


router = resource_router(prefix=CLI_PREFIX, tag="manifests", route_class=JournalRoute)


async def kind_broker(
    kind: Annotated[
        str,
        Path(
            max_length=100,
            description="The kind: case-insensitive, singular or plural, snake_case accepted.",
            examples=["Plugin", "plugins", "smarter_auth_token"],
        ),
    ],
) -> Broker[Any]:
    return registry.resolve(kind)


AccountNumber = Annotated[
    str | None,
    Query(
        alias="accountNumber",
        max_length=14,
        description="Act in this account (one you belong to; a superuser, any) instead of your first profile's.",
        examples=["3141-5926-5359"],
    ),
]


async def broker_context(
    request: Request, session: SessionDep, principal: PrincipalDep, account_number: AccountNumber = None
) -> BrokerContext:
    runtime = runtime_of(request)  # not RuntimeDep: every manifest command pays for each sub-dependency
    return await protocol.broker_context(
        session,
        principal,
        runtime.settings,
        account_number=account_number,
        reader=runtime.reader,
        caches=runtime.caches,
        cipher=runtime.cipher,
        pools=runtime.pools,
    )


KindDep = Annotated[Broker[Any], Depends(kind_broker)]
ContextDep = Annotated[BrokerContext, Depends(broker_context)]
Name = Annotated[
    str,
    Query(
        min_length=1,
        max_length=255,
        description="The resource's name (for User: the username).",
        examples=["test_plugin"],
    ),
]
OptionalName = Annotated[
    str | None, Query(min_length=1, max_length=255, description="Only the resource with this name.")
]

# 401 and 503 on every route: every one authenticates, and authentication reads the database.
_BASE = (401, 503)
_KIND = (*_BASE, 400, 422)  # unknown kind; bad query (accountNumber)
_KIND_NAMED = (*_KIND, 403, 404)


# --- request body of apply / validate -------------------------------------------------------------

_EXAMPLE = {
    "apiVersion": "smarter.sh/v1",
    "kind": "SmarterAuthToken",
    "metadata": {"name": "ci_key", "description": "The CI pipeline's key", "version": "1.0.0"},
    "spec": {"config": {"isActive": True, "username": "admin"}},
}
_EXAMPLE_YAML = """apiVersion: smarter.sh/v1
kind: SmarterAuthToken
metadata:
  name: ci_key
  description: The CI pipeline's key
  version: 1.0.0
  annotations:
    - smarter.sh/created-at: 2024-01-01
spec:
  config:
    isActive: true
    username: admin
"""
_MANIFEST_SCHEMA = {
    **ManifestDocument.model_json_schema(by_alias=True),
    "required": ["apiVersion", "kind", "metadata", "spec"],
}
_MANIFEST_BODY = {
    "requestBody": {
        "required": True,
        "description": "A SAM manifest, as JSON or YAML (`application/x-yaml`, `application/yaml`, `text/yaml`).",
        "content": {
            "application/json": {"schema": _MANIFEST_SCHEMA, "example": _EXAMPLE},
            **{
                media: {"schema": _MANIFEST_SCHEMA, "example": _EXAMPLE_YAML}
                for media in ("application/x-yaml", "application/yaml", "text/yaml")
            },
        },
    }
}


# --- write commands -------------------------------------------------------------------------------


@router.post(
    "/apply/",
    summary="Apply a manifest",
    description=(
        "Create or update the resource a manifest describes (the kind comes from the body's `kind`). "
        "Applying the same manifest twice changes nothing the second time. `data` is the broker's result: "
        "for a new SmarterAuthToken it holds the key's plaintext in `data.key`, shown this once. "
        "A `status` section (from describe) is accepted and ignored."
    ),
    openapi_extra=_MANIFEST_BODY,
    responses=journal_errors(*_KIND_NAMED, 409, 413),
)
async def apply_manifest(request: Request, ctx: ContextDep) -> Journaled[dict[str, Any]]:
    raw, media = await request.body(), request.headers.get("content-type")
    broker, manifest = await protocol.read_manifest(raw, media, on_kind=lambda kind: name_thing(request, kind))
    return await protocol.apply(ctx, broker, manifest)


@router.post(
    "/validate/",
    summary="Validate a manifest",
    description=(
        "Check a manifest without writing anything: `data` is `{valid, errors}`. An invalid manifest, "
        "including an unparseable body or an unknown kind, is a 200 with `valid: false` and the reasons."
    ),
    openapi_extra=_MANIFEST_BODY,
    responses=journal_errors(*_BASE, 413),
)
async def validate_manifest(request: Request, _: PrincipalDep) -> Journaled[ManifestValidation]:
    return await protocol.validate(await request.body(), request.headers.get("content-type"))


@router.post(
    "/delete/{kind}/",
    summary="Delete a resource",
    description="Delete the named resource (ownership scope: 404 when you cannot see it, 403 when you may not).",
    responses=journal_errors(*_KIND_NAMED, 409, 413),
)
async def delete_manifest(ctx: ContextDep, broker: KindDep, name: Name) -> JournalMessage:
    return await protocol.delete(ctx, broker, name)


@router.post(
    "/deploy/{kind}/",
    summary="Deploy a resource",
    description="SmarterAuthToken: activate the key. Kinds that cannot be deployed answer 400.",
    responses=journal_errors(*_KIND_NAMED, 413),
)
async def deploy_manifest(ctx: ContextDep, broker: KindDep, name: Name) -> JournalMessage:
    return await protocol.deploy(ctx, broker, name)


@router.post(
    "/undeploy/{kind}/",
    summary="Undeploy a resource",
    description="SmarterAuthToken: deactivate the key. Kinds that cannot be deployed answer 400.",
    responses=journal_errors(*_KIND_NAMED, 413),
)
async def undeploy_manifest(ctx: ContextDep, broker: KindDep, name: Name) -> JournalMessage:
    return await protocol.deploy(ctx, broker, name, undo=True)


# --- read commands (GET and POST) -----------------------------------------------------------------

Endpoint = TypeVar("Endpoint", bound=Callable[..., Any])


def read_route(
    path: str, *, summary: str, description: str, statuses: tuple[int, ...], response_model: Any = None
) -> Callable[[Endpoint], Endpoint]:
    """Register a read for POST (what the SDK sends) and GET, as two routes with distinct operation ids.

    `response_model` documents an endpoint that writes its JSON itself (otherwise its return type does)."""
    documented = {} if response_model is None else {"response_model": response_model}

    def register(endpoint: Endpoint) -> Endpoint:
        # Only a POST has a body the size guard can refuse (413).
        for method, name, extra in (("POST", endpoint.__name__, (413,)), ("GET", f"{endpoint.__name__}_get", ())):
            router.add_api_route(
                path,
                endpoint,
                methods=[method],
                name=name,
                summary=summary,
                description=description,
                responses=journal_errors(*statuses, *extra),
                **documented,
            )
        return endpoint

    return register


@read_route(
    "/get/{kind}/",
    summary="List resources of a kind",
    description=(
        "The kind's resources you can read, as a table (`data.titles`, `data.items`, `metadata.count`); "
        "`?name=` keeps the one with that name."
    ),
    statuses=(*_KIND, 403),
    response_model=Journaled[ManifestList],
)
async def get_manifests(ctx: ContextDep, broker: KindDep, name: OptionalName = None) -> Response:
    return Response(await protocol.get(ctx, broker, name), media_type="application/json")


@read_route(
    "/describe/{kind}/",
    summary="Describe a resource",
    description="The named resource's manifest with its read-only `status`; it can be applied as is.",
    statuses=_KIND_NAMED,
)
async def describe_manifest(ctx: ContextDep, broker: KindDep, name: Name) -> Journaled[ManifestDocument]:
    return await protocol.describe(ctx, broker, name)


@read_route(
    "/logs/{kind}/",
    summary="A resource's logs",
    description="No kind in scope keeps logs: always 200 with an empty `data` object.",
    statuses=(*_BASE, 400, 422),
)
async def manifest_logs(_: PrincipalDep, broker: KindDep, name: OptionalName = None) -> Journaled[dict[str, Any]]:
    return protocol.logs(broker, name)


@read_route(
    "/example-manifest/{kind}/",
    summary="An example manifest",
    description="A manifest of the kind that validates and applies cleanly, to start from.",
    statuses=(*_BASE, 400, 422),
)
async def example_manifest(_: PrincipalDep, broker: KindDep) -> Journaled[ManifestDocument]:
    return protocol.example_manifest(broker)


@read_route(
    "/json-schema/{kind}/",
    summary="The JSON Schema of a kind's manifest",
    description="The JSON Schema (draft 2020-12) the server validates the kind's manifests with.",
    statuses=(*_BASE, 400, 422),
)
async def json_schema(_: PrincipalDep, broker: KindDep) -> Journaled[dict[str, Any]]:
    return protocol.json_schema(broker)


@read_route(
    "/whoami/",
    summary="Who am I",
    description=(
        "The key's user, the account they act in (their first profile's, or `?accountNumber=`; "
        "for `admin` the platform account) and the environment."
    ),
    statuses=(*_BASE, 403, 422),
)
async def whoami(
    session: SessionDep, principal: PrincipalDep, runtime: RuntimeDep, account_number: AccountNumber = None
) -> Journaled[WhoAmI]:
    return await protocol.whoami(session, principal, runtime.settings, account_number=account_number)


@read_route(
    "/version/",
    summary="Platform version",
    description="The service's version, and for staff and superusers its Python and main packages' versions.",
    statuses=_BASE,
)
async def version(principal: PrincipalDep) -> Journaled[PlatformVersion]:
    return platform_status.version(principal)


@read_route(
    "/status/",
    summary="Platform status",
    description=(
        "Whether the database answers; for staff and superusers also its backend and schema revision, the "
        "caches and the runtime."
    ),
    statuses=_BASE,
)
async def status(principal: PrincipalDep, runtime: RuntimeDep) -> Journaled[PlatformStatus]:
    facts = platform_status.Platform(
        settings=runtime.settings,
        head=runtime.schema.head,
        read_revision=lambda: runtime.schema.check(runtime.engine),
        listening=runtime.listener is not None,
    )
    return await platform_status.status(facts, principal)


@read_route(
    "/resources/",
    summary="Supported kinds",
    description="The kinds this service manages, and whether each can be deployed.",
    statuses=_BASE,
)
async def resources(_: PrincipalDep) -> Journaled[list[KindInfo]]:
    return protocol.kinds()
