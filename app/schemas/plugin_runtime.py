"""Bodies of the plugin runtime: selection, tool calls, and their answers (documented in OpenAPI)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from app.schemas.base import CamelModel, InputModel

ToolFormat = Literal["openai", "anthropic", "mcp"]
# Bounds that keep a selection's work small (the body limit bounds the rest).
MAX_TEXT = 32_768
MAX_HISTORY = 200


class HistoryMessage(BaseModel):
    """A chat message (OpenAI's shape; other fields such as `tool_calls` are ignored). Only `user` turns count."""

    model_config = ConfigDict(extra="ignore")

    role: str = Field(max_length=64)
    content: str | None = Field(default=None, max_length=MAX_TEXT)


class SelectionRequest(InputModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "prompt": "What is the weather forecast for Lisbon?",
                    "history": [{"role": "user", "content": "I am flying to Portugal tomorrow."}],
                    "maxTools": 5,
                    "format": "openai",
                }
            ]
        }
    )

    prompt: str = Field(max_length=MAX_TEXT, description="The user's prompt.")
    history: list[HistoryMessage] = Field(
        default_factory=list,
        max_length=MAX_HISTORY,
        description="Earlier messages; a search term seen in any `user` turn selects its plugin.",
    )
    max_tools: int = Field(default=20, ge=1, le=128, description="At most this many plugins are selected.")
    format: ToolFormat = Field(default="openai", description="The shape of `tools`.")
    account_number: str | None = Field(
        default=None, description="Select among this account's plugins (one you belong to) and the platform's."
    )


class PromptSettings(CamelModel):
    provider: str
    system_role: str
    model: str
    temperature: float
    max_completion_tokens: int


class SelectedPlugin(CamelModel):
    id: int
    name: str
    kind: str
    directive: Literal["always", "search_terms", "llm"]
    matched_term: str | None
    score: float | None = Field(description="The BM25 relevance of an `llm` plugin; null for the others.")
    prompt: PromptSettings


class SelectionResponse(CamelModel):
    selected: list[SelectedPlugin]
    tools: list[dict[str, Any]] = Field(description="The selected plugins' tool definitions, in `format`.")


class ToolCallRequest(InputModel):
    """`{"arguments": {...}}`, or an OpenAI tool call `{"name": ..., "arguments": "<JSON text>"}`."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"arguments": {"inquiry_type": "conditions"}}, {"name": "weather", "arguments": "{}"}]
        }
    )

    arguments: dict[str, Any] | str | None = Field(default=None, description="An object, or its JSON text.")
    name: str | None = Field(default=None, description="The tool's name (must be this plugin's, if given).")


class ToolCallResponse(CamelModel):
    result: Any = Field(description="What the plugin answered (JSON).")
    truncated: bool = Field(description="The result was cut to the plugin's limit.")
    elapsed_ms: float = Field(description="How long the execution took, in milliseconds.")
