"""One API request of an API connection on the process's shared `httpx.AsyncClient`: the connection's auth,
each hop sent to the address the network policy just checked (TLS verified against the host name through
SNI), redirects followed hop by hop, the body read up to a cap."""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urljoin

import httpx

from app.models import ApiConnection
from app.network import NetworkPolicy, UpstreamFailed, UpstreamTimeout, checked_address
from app.services.connections.drivers import safe_detail

MAX_REDIRECTS = 5
Redirects = Literal["none", "same_host", "any"]
# Headers that carry the connection's credentials: never sent to another host after a redirect.
_CREDENTIAL_HEADERS = ("authorization", "x-api-key", "proxy-authorization")


@dataclass(frozen=True, slots=True)
class ApiResponse:
    """An API's answer: status, headers, the body (at most `max_bytes`), and the URL that gave it."""

    status_code: int
    headers: httpx.Headers
    content: bytes
    url: str


def auth_headers(connection: ApiConnection, secret_value: str | None) -> dict[str, str]:
    """The headers of the connection's `authMethod` (none without a secret value)."""
    if secret_value is None or connection.auth_method == "none":
        return {}
    if connection.auth_method == "basic":
        token = base64.b64encode(f"{connection.username or ''}:{secret_value}".encode()).decode("ascii")
        return {"Authorization": f"Basic {token}"}
    if connection.auth_method == "token":
        return {"Authorization": f"Bearer {secret_value}"}
    if connection.auth_method == "api_key":
        return {"X-API-Key": secret_value}
    return {}


def absolute(url: str) -> httpx.URL:
    try:
        target = httpx.URL(url)
    except (httpx.InvalidURL, ValueError) as exc:
        raise UpstreamFailed("The API URL is not a valid URL.") from exc
    if target.scheme not in ("http", "https") or not target.host:
        raise UpstreamFailed("The API URL must be an absolute http or https URL.")
    return target


@dataclass(frozen=True, slots=True)
class ApiCall:
    """What one `api_request` sends, hop after hop."""

    client: httpx.AsyncClient
    policy: NetworkPolicy
    connection: ApiConnection
    secret_value: str | None
    redirects: Redirects
    max_bytes: int

    async def send(
        self, method: str, url: str, params: Mapping[str, Any] | None, headers: Mapping[str, str] | None, json: Any
    ) -> ApiResponse:
        request_headers = httpx.Headers(headers or {})
        request_headers.update(auth_headers(self.connection, self.secret_value))
        first_host: str | None = None
        for _hop in range(MAX_REDIRECTS + 1):
            target = absolute(url)
            if first_host is None:
                first_host = target.host
            elif target.host != first_host:
                if self.redirects == "same_host":
                    raise UpstreamFailed(
                        f"The API redirected to another host ({target.host}); only same-host redirects are followed."
                    )
                for name in _CREDENTIAL_HEADERS:
                    request_headers.pop(name, None)
            response = await self.hop(method, target, params, request_headers, json)
            location = response.headers.get("location")
            if self.redirects == "none" or response.status_code not in (301, 302, 303, 307, 308) or not location:
                return response
            url = urljoin(str(target), location)
            params = None  # the Location is the whole next URL
            if response.status_code == 303 or (response.status_code in (301, 302) and method not in ("GET", "HEAD")):
                method, json = "GET", None
        raise UpstreamFailed(f"The API redirected more than {MAX_REDIRECTS} times.")

    async def hop(
        self, method: str, target: httpx.URL, params: Mapping[str, Any] | None, headers: httpx.Headers, json: Any
    ) -> ApiResponse:
        port = target.port or (443 if target.scheme == "https" else 80)
        host = target.raw_host.decode("ascii")  # IDNA-encoded: what DNS and TLS (SNI) are given
        address = await checked_address(self.policy, host, port)
        hop_headers = httpx.Headers(headers)
        hop_headers["Host"] = target.netloc.decode("ascii")
        extensions: dict[str, Any] = {"sni_hostname": host} if target.scheme == "https" else {}
        request = self.client.build_request(
            method,
            target.copy_with(host=address),
            params=params,
            headers=hop_headers,
            json=json,
            timeout=httpx.Timeout(self.connection.timeout),
            extensions=extensions,
        )
        try:
            response = await self.client.send(request, stream=True)
            try:
                body = bytearray()
                async for chunk in response.aiter_bytes():  # decoded: the cap also bounds a compressed bomb
                    body += chunk
                    if len(body) > self.max_bytes:
                        raise UpstreamFailed(f"The API's response is larger than {self.max_bytes // 1024} KiB.")
            finally:
                await response.aclose()
        except httpx.TimeoutException as exc:
            raise UpstreamTimeout(
                f"The API did not answer within the connection's timeout ({self.connection.timeout} s)."
            ) from exc
        except httpx.HTTPError as exc:
            detail = safe_detail(exc, self.secret_value)
            raise UpstreamFailed(f"The API at {target.host} could not be reached: {detail}.") from exc
        return ApiResponse(response.status_code, response.headers, bytes(body), str(target))
