"""Connections: `/api/v1/connections/sql/` and `/api/v1/connections/api/` (SAM kinds `SqlConnection`,
`ApiConnection`), the same routes for both kinds, built by `_routes`."""

# No `from __future__ import annotations`: the routes are declared in a function whose body and input models
# are its arguments, and FastAPI reads the annotations as objects.

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request, Response
from sqlalchemy.ext.asyncio import AsyncSession

from app.deps import PrincipalDep, RuntimeDep, SessionDep
from app.openapi import problems
from app.routers.base import resource_router
from app.routers.lists import list_response, list_responses
from app.routers.pages import PageDep
from app.schemas.connections import (
    ApiConnectionCreate,
    ApiConnectionPut,
    ApiConnectionRead,
    ApiConnectionUpdate,
    ConnectionTestResult,
    SqlConnectionCreate,
    SqlConnectionPut,
    SqlConnectionRead,
    SqlConnectionUpdate,
)
from app.services.base import Page, path_id
from app.services.connections import probe, queries, writes
from app.services.connections.rules import LABELS, NOT_FOUND, Kind
from app.services.connections.views import row_of
from app.services.plugins.rules import normalised

ConnectionId = Annotated[str, Path(alias="id", description="The connection's integer id or its hashedId.")]
AccountNumberQuery = Annotated[
    str | None,
    Query(alias="accountNumber", description="Act in this account (one you belong to) instead of your first one."),
]
NameQuery = Annotated[str | None, Query(max_length=255, description="Exact name (normalised to snake_case).")]

_SCOPE = (
    "Readable by the members of the owning account and superusers (any other: 404); changed by the ownership "
    "scope: staff change their accounts' connections, others only their own (403)."
)
_SECRETS = (
    "Credentials are the names of secrets of the account that you can see (an unknown name: 422 naming the field)."
)


def _routes(
    kind: Kind,
    read_model: Any,
    create_model: Any,
    put_model: Any,
    update_model: Any,
    fields: str,
) -> APIRouter:
    router = resource_router(prefix=f"/api/v1/connections/{kind}", tag="connections")
    label = LABELS[kind]

    def _id(value: str) -> int:
        return path_id(value, not_found=NOT_FOUND[kind])

    @router.get(
        "/",
        name=f"list_{kind}_connections",
        response_model=list[read_model],
        summary=f"List {label}s",
        description=(
            f"{label}s of your accounts (a superuser: all), newest first. {_SCOPE} Filter by `name`. Without "
            '`limit` the list is complete; with it, `Link: <...>; rel="next"` points to the next page.'
        ),
        responses=list_responses(401, 422, 503),
    )
    async def list_connections(
        request: Request, principal: PrincipalDep, session: SessionDep, query: PageDep, name: NameQuery = None
    ) -> Response:
        wanted = normalised(name, where="query") if name is not None else None

        async def fetch(session: AsyncSession, page: Page) -> tuple[list[Any], bool]:
            found, more = await queries.list_connections(session, principal, kind, page, name=wanted)
            names = await queries.secret_names(session, found)
            return [row_of(connection, names) for connection in found], more

        return await list_response(request, session, query, fetch, read_model)

    @router.post(
        "/",
        name=f"create_{kind}_connection",
        status_code=201,
        response_model=read_model,
        summary=f"Create an {label}",
        description=(
            f"Create an {label} owned by your profile in your acting account (or `accountNumber`, body or query). "
            f"The name is normalised to snake_case and unique per account and kind (409). {fields} {_SECRETS}"
        ),
        responses=problems(400, 401, 403, 409, 413, 422, 503),
    )
    async def create_connection(
        principal: PrincipalDep,
        session: SessionDep,
        body: create_model,
        account_number: AccountNumberQuery = None,
    ) -> Any:
        return await writes.create_connection(session, principal, kind, body, account_number=account_number)

    @router.get(
        "/{id}/",
        name=f"get_{kind}_connection",
        response_model=read_model,
        summary=f"Get an {label}",
        description=f"One {label}. {_SCOPE}",
        responses=problems(401, 404, 422, 503),
    )
    async def get_connection(id_: ConnectionId, principal: PrincipalDep, session: SessionDep) -> Any:
        connection = await queries.get_readable(session, principal, kind, _id(id_))
        return row_of(connection, await queries.secret_names(session, [connection]))

    @router.patch(
        "/{id}/",
        name=f"update_{kind}_connection",
        response_model=read_model,
        summary=f"Update an {label}",
        description=f"Change the fields sent; `null` clears an optional one. {_SCOPE} {_SECRETS}",
        responses=problems(400, 401, 403, 404, 409, 413, 422, 503),
    )
    async def update_connection(
        id_: ConnectionId,
        principal: PrincipalDep,
        session: SessionDep,
        body: update_model,
    ) -> Any:
        return await writes.update_connection(session, principal, kind, _id(id_), body)

    @router.put(
        "/{id}/",
        name=f"replace_{kind}_connection",
        response_model=read_model,
        summary=f"Replace an {label}",
        description=f"Replace every field; missing ones take their defaults. {_SCOPE} {_SECRETS}",
        responses=problems(400, 401, 403, 404, 409, 413, 422, 503),
    )
    async def replace_connection(
        id_: ConnectionId,
        principal: PrincipalDep,
        session: SessionDep,
        body: put_model,
    ) -> Any:
        return await writes.update_connection(session, principal, kind, _id(id_), body)

    @router.delete(
        "/{id}/",
        name=f"delete_{kind}_connection",
        status_code=204,
        summary=f"Delete an {label}",
        description=f"{_SCOPE} While a plugin uses the connection: 409 naming the plugins.",
        responses=problems(401, 403, 404, 409, 422, 503),
    )
    async def delete_connection(
        id_: ConnectionId, principal: PrincipalDep, session: SessionDep, runtime: RuntimeDep
    ) -> Response:
        await writes.delete_connection(session, principal, kind, _id(id_), runtime.pools)
        return Response(status_code=204)

    @router.post(
        "/{id}/test/",
        name=f"test_{kind}_connection",
        response_model=ConnectionTestResult,
        summary=f"Test an {label}",
        description=(
            "Open the connection now, within its timeout ("
            + ("SQL: `SELECT 1`" if kind == "sql" else "`HEAD` of `baseUrl`, then `GET` when `HEAD` fails")
            + "): `ok`, `latencyMs` and, on failure, `error` (a sentence without secrets). The network policy "
            "(`SMARTER_CORE_PLUGIN_NETWORKS`) applies. Needs the ownership scope (the test uses the connection's "
            "secrets); an expired or missing secret is a 409."
        ),
        responses=problems(401, 403, 404, 409, 422, 503),
    )
    async def test_connection(
        id_: ConnectionId, principal: PrincipalDep, session: SessionDep, runtime: RuntimeDep
    ) -> ConnectionTestResult:
        return await probe.test_connection(session, principal, runtime.pools, runtime.cipher, kind, _id(id_))

    return router


sql_router = _routes(
    "sql",
    SqlConnectionRead,
    SqlConnectionCreate,
    SqlConnectionPut,
    SqlConnectionUpdate,
    "`dbEngine`: PostgreSQL, MySQL/MariaDB or SQLite (`django.db.backends.*` or the short forms); `port` "
    "defaults by engine; `timeout` 1..30 s.",
)
api_router = _routes(
    "api",
    ApiConnectionRead,
    ApiConnectionCreate,
    ApiConnectionPut,
    ApiConnectionUpdate,
    "`baseUrl` an absolute http(s) URL; `authMethod` none, basic (`username` and the `apiKey` secret), token or "
    "api_key; `timeout` 1..30 s.",
)
