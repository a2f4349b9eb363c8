"""Login tokens: `POST /api/v1/auth/login/` (HTTP Basic), `logout/`, `logoutall/`."""

from __future__ import annotations

import base64
from typing import Annotated

from fastapi import Response, Security
from fastapi.security import HTTPBasic, HTTPBasicCredentials
from fastapi.security.utils import get_authorization_scheme_param
from starlette.requests import HTTPConnection

from app.deps import PrincipalDep, RuntimeDep, SessionDep
from app.errors import Unauthorized
from app.openapi import problems
from app.routers.base import resource_router
from app.schemas.auth import LoginResponse
from app.schemas.users import UserRead
from app.services import auth

router = resource_router(prefix="/api/v1/auth", tag="auth")


class Utf8Basic(HTTPBasic):
    """HTTP Basic decoded as UTF-8 (RFC 7617), where FastAPI's decodes ASCII and refuses accented passwords.

    Missing or malformed credentials give None: the route answers them with the same 401 challenge.
    """

    async def __call__(self, request: HTTPConnection) -> HTTPBasicCredentials | None:  # type: ignore[override]
        scheme, param = get_authorization_scheme_param(request.headers.get("Authorization"))
        if scheme.lower() != "basic":
            return None
        try:
            decoded = base64.b64decode(param, validate=True).decode("utf-8")
        except ValueError:  # binascii.Error and UnicodeDecodeError are ValueErrors
            return None
        username, separator, password = decoded.partition(":")
        if not separator:
            return None
        return HTTPBasicCredentials(username=username, password=password)


basic = Utf8Basic(scheme_name="HTTPBasic", realm="smarter", auto_error=False, description="Your username and password.")


@router.post(
    "/login/",
    summary="Log in",
    description=(
        "Exchange HTTP Basic credentials for a login token that expires after `SMARTER_CORE_LOGIN_TOKEN_TTL` "
        "seconds (10 h by default). Any active user may log in. A wrong username and a wrong password give "
        "the same 401. After 10 failed logins for one username within 15 minutes, its further attempts get "
        "429 (with `Retry-After`) until the window has passed."
    ),
    responses=problems(401, 429, 503),
)
async def login(
    session: SessionDep,
    runtime: RuntimeDep,
    credentials: Annotated[HTTPBasicCredentials | None, Security(basic)],
) -> LoginResponse:
    if credentials is None:
        raise Unauthorized(
            "Send your username and password with HTTP Basic authentication.", scheme=auth.BASIC_CHALLENGE
        )
    token, plaintext, user = await auth.login(
        session, credentials.username, credentials.password, runtime.settings.login_token_ttl, runtime.login_throttle
    )
    assert token.expires_at is not None
    return LoginResponse(token=plaintext, expires_at=token.expires_at, user=UserRead.model_validate(user))


@router.post(
    "/logout/",
    status_code=204,
    summary="Log out",
    description="Revoke the credential this request presents: a login token is deleted, a named API key deactivated.",
    responses=problems(401, 503),
)
async def logout(session: SessionDep, principal: PrincipalDep) -> Response:
    await auth.logout(session, principal)
    return Response(status_code=204)


@router.post(
    "/logoutall/",
    status_code=204,
    summary="Log out everywhere",
    description="Delete all of your login tokens. Named API keys keep working.",
    responses=problems(401, 503),
)
async def logout_all(session: SessionDep, principal: PrincipalDep) -> Response:
    await auth.logout_all(session, principal)
    return Response(status_code=204)
