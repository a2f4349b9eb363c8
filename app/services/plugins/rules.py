"""What a plugin's values must be: the defaults of its parts, their shapes, its name, the messages."""

from __future__ import annotations

from typing import Any

from app.models.plugin import (
    DEFAULT_MAX_COMPLETION_TOKENS,
    DEFAULT_MODEL,
    DEFAULT_PROVIDER,
    DEFAULT_SYSTEM_ROLE,
    DEFAULT_TEMPERATURE,
)
from app.services.base import query_name

NOT_FOUND = "No plugin with this id is visible to you."
FORBIDDEN = "You can read this plugin but not change it: it belongs to another user."
STATIC_ONLY = "Only static plugins have static data; this plugin's class is {plugin_class}."

PROMPT_DEFAULTS: dict[str, Any] = {
    "provider": DEFAULT_PROVIDER,
    "system_role": DEFAULT_SYSTEM_ROLE,
    "model": DEFAULT_MODEL,
    "temperature": DEFAULT_TEMPERATURE,
    "max_completion_tokens": DEFAULT_MAX_COMPLETION_TOKENS,
}
# A new plugin without a selector lets the LLM decide from its description: `search_terms` would need
# terms, and `always` would put it in every prompt.
SELECTOR_DEFAULTS: dict[str, Any] = {"directive": "llm", "search_terms": []}


# A plugin name looked up as stored: the one query-name rule (`services.base.query_name`).
normalised = query_name


def prompt_values(prompt: dict[str, Any] | None) -> dict[str, Any]:
    if prompt is None:
        return dict(PROMPT_DEFAULTS)
    return {key: prompt[key] for key in PROMPT_DEFAULTS}


def selector_values(directive: str, search_terms: list[str] | None) -> dict[str, Any]:
    return {"directive": directive, "search_terms": list(search_terms or []) if directive == "search_terms" else []}


def data_values(
    description: str, parameters: dict[str, Any] | None, static_data: dict[str, Any] | None
) -> dict[str, Any]:
    return {"description": description, "parameters": parameters, "static_data": static_data or {}}
