"""The `api` class: the plugin's request sent to its connection's `baseUrl` + `endpoint`.

Placeholders are path-escaped in the URL (an argument cannot add a path segment, a query or a host), are
the argument's JSON value where a `body` string is exactly one placeholder (else text within the string),
and text in `urlParams` and `headers` values. A GET sends the arguments no placeholder used as its query
string; a POST/PUT/PATCH without a `body` sends them as its JSON body. The connection's auth, the network
policy on every hop, same-host redirects only, the 1 MiB cap and the timeout are the connection pools'
(`app.services.connections.pools.api_request`). A JSON answer is the result (a list cut to `limit`), any
other content type its text; an answer of 4xx/5xx is the API failing (502).
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import quote

from app.models import ApiConnection
from app.network import UpstreamFailed
from app.schemas.plugin_data import PLACEHOLDER, placeholders
from app.services.plugin_runtime import connected
from app.services.plugin_runtime.kinds import CallContext, JsonObject, KindRuntime, Outcome, bad_argument, register
from app.services.plugins.views import PluginView

KIND = "ApiPlugin"
_ONLY_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
_LINE_BREAK = re.compile(r"[\r\n\x00]")
_BODY_METHODS = ("POST", "PUT", "PATCH")


def _text(value: Any) -> str:
    """An argument as text: strings as they are, everything else as JSON (`true`, `3`, `[1, 2]`)."""
    if value is None:
        return ""
    return value if isinstance(value, str) else json.dumps(value)


def _path_segment(value: Any) -> str:
    escaped = quote(_text(value), safe="")
    # `.` and `..` are path segments of their own: escaped, they stay a value.
    return escaped.replace(".", "%2E") if escaped in (".", "..") else escaped


def _substituted(template: str, arguments: JsonObject, escape: Any = _text) -> str:
    return PLACEHOLDER.sub(lambda match: escape(arguments.get(match.group(1))), template)


def _body(template: Any, arguments: JsonObject) -> Any:
    """The body template with its placeholders filled: a string that is one placeholder becomes the value."""
    if isinstance(template, str):
        whole = _ONLY_PLACEHOLDER.fullmatch(template)
        return arguments.get(whole.group(1)) if whole else _substituted(template, arguments)
    if isinstance(template, dict):
        return {key: _body(value, arguments) for key, value in template.items()}
    if isinstance(template, list):
        return [_body(value, arguments) for value in template]
    return template


def _header_value(name: str, template: Any, arguments: JsonObject) -> str:
    value = _substituted(template, arguments) if isinstance(template, str) else _text(template)
    if _LINE_BREAK.search(value) or not value.isascii():
        used = sorted(placeholders(template)) or [name]
        raise bad_argument(used[0], "A value sent in a header must be ASCII text without line breaks.")
    return value


def request_of(
    data: dict[str, Any], base_url: str, arguments: JsonObject
) -> tuple[str, dict[str, Any], dict[str, str], Any]:
    """The URL, query parameters, headers and JSON body the call sends (before the connection's auth)."""
    endpoint: str = data["endpoint"]
    url = base_url.rstrip("/") + _substituted(endpoint, arguments, _path_segment)
    params: dict[str, Any] = {
        item["key"]: _substituted(item["value"], arguments) if isinstance(item["value"], str) else item["value"]
        for item in data.get("url_params") or []
    }
    headers = {
        item["name"]: _header_value(item["name"], item["value"], arguments) for item in data.get("headers") or []
    }
    template = data.get("body")
    templates = [item["value"] for item in [*(data.get("url_params") or []), *(data.get("headers") or [])]]
    used = placeholders([endpoint, templates, template])
    unused = {name: value for name, value in arguments.items() if name not in used and value is not None}
    method: str = data["method"]
    body: Any = None
    if template is not None:
        body = _body(template, arguments)
    elif method in _BODY_METHODS and unused:
        body = unused
    if method == "GET":
        for name, value in unused.items():
            params.setdefault(name, _text(value))
    return url, params, headers, body


def _answer(content: bytes, content_type: str, limit: int) -> Outcome:
    media = content_type.split(";", 1)[0].strip().lower()
    if media == "application/json" or media.endswith("+json"):
        try:
            value = json.loads(content) if content.strip() else None
        except ValueError as exc:
            raise UpstreamFailed("The API answered with JSON that does not parse.") from exc
        if isinstance(value, list) and len(value) > limit:
            return Outcome(value[:limit], truncated=True)
        return Outcome(value)
    charset = "utf-8"
    for part in content_type.split(";")[1:]:
        key, _, value = part.strip().partition("=")
        if key.lower() == "charset" and value:
            charset = value.strip('"')
    try:
        return Outcome(content.decode(charset, errors="replace"))
    except LookupError:
        return Outcome(content.decode("utf-8", errors="replace"))


async def execute(view: PluginView, arguments: JsonObject, context: CallContext) -> Outcome:
    data, connection, secret = await connected.plugin_connection(
        view, context, ApiConnection, "api_key_secret_id", KIND
    )
    assert context.pools is not None  # `plugin_connection` checked
    url, params, headers, body = request_of(data, connection.base_url, connected.with_defaults(view, arguments))
    response = await context.pools.api_request(
        connection, secret, data["method"], url, params=params, headers=headers, json=body, redirects="same_host"
    )
    if response.status_code >= 400:
        raise UpstreamFailed(f"The API answered {response.status_code}.")
    if 300 <= response.status_code < 400:
        raise UpstreamFailed(f"The API answered {response.status_code} without a redirect that could be followed.")
    return _answer(response.content, response.headers.get("content-type", ""), data["result_limit"])


API = KindRuntime(
    input_schema=connected.input_schema,
    description=connected.description,
    search_text=connected.search_text,
    test_arguments=connected.test_arguments,
    execute=execute,
    read_only=False,
)
register("api", API)
