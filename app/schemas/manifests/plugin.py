"""The `Plugin` manifest (static plugins), as the SDK's `SAMPlugin` and the original's static-plugin.yaml.

Its field rules are the REST ones (`app.schemas.plugins`); only the spelling differs (`maxTokens`).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import AliasChoices, Field, field_validator

from app.models.plugin import (
    DEFAULT_MAX_COMPLETION_TOKENS,
    DEFAULT_MODEL,
    DEFAULT_PROVIDER,
    DEFAULT_SYSTEM_ROLE,
    DEFAULT_TEMPERATURE,
)
from app.schemas.base import Description, Name
from app.schemas.manifests.base import SAMManifest, SAMMetadata, SAMModel
from app.schemas.plugin_data import ApiDataSpec, SqlDataSpec
from app.schemas.plugins import (
    Directive,
    MaxTokens,
    ModelName,
    Parameters,
    Provider,
    SearchTerms,
    StaticData,
    SystemRole,
    Temperature,
    search_terms_rule,
)


class PluginMetadata(SAMMetadata):
    plugin_class: Literal["static"] = Field(
        "static", description="The `Plugin` kind is for static plugins (SqlPlugin and ApiPlugin are other kinds)."
    )


class PluginSelectorSpec(SAMModel):
    directive: Directive
    search_terms: SearchTerms | None = Field(None, validate_default=True)

    _search_terms_rule = field_validator("search_terms")(search_terms_rule)


class PluginPromptSpec(SAMModel):
    provider: Provider = DEFAULT_PROVIDER
    system_role: SystemRole = DEFAULT_SYSTEM_ROLE
    model: ModelName = DEFAULT_MODEL
    temperature: Temperature = DEFAULT_TEMPERATURE
    # Stored as max_completion_tokens; the manifest's name is the original's `maxTokens`.
    max_tokens: MaxTokens = Field(
        DEFAULT_MAX_COMPLETION_TOKENS,
        validation_alias=AliasChoices("maxTokens", "max_tokens", "maxCompletionTokens"),
    )


class PluginDataSpec(SAMModel):
    description: Description = ""
    static_data: StaticData | None = None
    parameters: Parameters | None = None


class PluginSpec(SAMModel):
    selector: PluginSelectorSpec
    prompt: PluginPromptSpec
    data: PluginDataSpec


class PluginManifest(SAMManifest):
    kind: Literal["Plugin"]
    metadata: PluginMetadata
    spec: PluginSpec


def example_manifest() -> dict[str, Any]:
    """A static plugin manifest in the original's example style (it applies cleanly)."""
    return {
        "apiVersion": "smarter.sh/v1",
        "kind": "Plugin",
        "metadata": {
            "name": "example_static_plugin",
            "pluginClass": "static",
            "description": "A 'hello world' static plugin that answers questions about OpenAI function calling.",
            "version": "0.1.0",
            "tags": ["example", "static"],
            "annotations": [{"smarter.sh/plugin/author": "Smarter"}],
        },
        "spec": {
            "selector": {
                "directive": "search_terms",
                "searchTerms": ["function calling", "example plugin"],
            },
            "prompt": {
                "provider": DEFAULT_PROVIDER,
                "systemRole": "You explain OpenAI function calling, using the data this plugin returns.",
                "model": DEFAULT_MODEL,
                "temperature": 0.0,
                "maxTokens": 256,
            },
            "data": {
                "description": "Returns facts about OpenAI function calling.",
                "staticData": {
                    "platformProvider": "OpenAI",
                    "links": [{"documentation": "https://platform.openai.com/docs/guides/function-calling"}],
                },
                "parameters": {
                    "type": "object",
                    "properties": {
                        "topic": {"type": "string", "description": "What the user asks about."},
                        "detailed": {"type": "boolean", "description": "Whether to include every detail."},
                    },
                    "required": ["topic"],
                },
            },
        },
    }


# --- SqlPlugin and ApiPlugin (the SDK's `SAMSqlPlugin` / `SAMApiPlugin`) -------------------------------------


class SqlPluginMetadata(SAMMetadata):
    plugin_class: Literal["sql"] = Field("sql", description="The `SqlPlugin` kind is for SQL plugins.")


class ApiPluginMetadata(SAMMetadata):
    plugin_class: Literal["api"] = Field("api", description="The `ApiPlugin` kind is for API plugins.")


class SqlPluginSpec(SAMModel):
    selector: PluginSelectorSpec
    prompt: PluginPromptSpec
    connection: Name = Field(description="The name of a SqlConnection of the plugin's account.")
    sql_data: SqlDataSpec


class ApiPluginSpec(SAMModel):
    selector: PluginSelectorSpec
    prompt: PluginPromptSpec
    connection: Name = Field(description="The name of an ApiConnection of the plugin's account.")
    api_data: ApiDataSpec


class SqlPluginManifest(SAMManifest):
    kind: Literal["SqlPlugin"]
    metadata: SqlPluginMetadata
    spec: SqlPluginSpec


class ApiPluginManifest(SAMManifest):
    kind: Literal["ApiPlugin"]
    metadata: ApiPluginMetadata
    spec: ApiPluginSpec


_CONNECTED_PROMPT = {
    "provider": DEFAULT_PROVIDER,
    "model": DEFAULT_MODEL,
    "temperature": 0.0,
    "maxTokens": 256,
}


def sql_example_manifest(connection: str = "example_sql_connection") -> dict[str, Any]:
    """A SQL plugin manifest (it applies cleanly once the account has a SqlConnection called `connection`)."""
    return {
        "apiVersion": "smarter.sh/v1",
        "kind": "SqlPlugin",
        "metadata": {
            "name": "example_sql_plugin",
            "pluginClass": "sql",
            "description": "Looks up customers by country in the CRM database.",
            "version": "0.1.0",
            "tags": ["example", "sql"],
            "annotations": [{"smarter.sh/plugin/author": "Smarter"}],
        },
        "spec": {
            "selector": {"directive": "search_terms", "searchTerms": ["customers", "customer list"]},
            "prompt": {**_CONNECTED_PROMPT, "systemRole": "You answer questions about customers from the CRM rows."},
            "connection": connection,
            "sqlData": {
                "description": "The customers of a country, newest first.",
                "sqlQuery": "SELECT id, name, country FROM customers WHERE country = {country} ORDER BY id DESC",
                "parameters": [
                    {
                        "name": "country",
                        "type": "string",
                        "description": "An ISO 3166 country code, e.g. PT.",
                        "required": True,
                    }
                ],
                "testValues": [{"name": "country", "value": "PT"}],
                "limit": 10,
            },
        },
    }


def api_example_manifest(connection: str = "example_api_connection") -> dict[str, Any]:
    """An API plugin manifest (it applies cleanly once the account has an ApiConnection called `connection`)."""
    return {
        "apiVersion": "smarter.sh/v1",
        "kind": "ApiPlugin",
        "metadata": {
            "name": "example_api_plugin",
            "pluginClass": "api",
            "description": "Today's weather in a city, from the weather API.",
            "version": "0.1.0",
            "tags": ["example", "api"],
            "annotations": [{"smarter.sh/plugin/author": "Smarter"}],
        },
        "spec": {
            "selector": {"directive": "search_terms", "searchTerms": ["weather", "forecast"]},
            "prompt": {**_CONNECTED_PROMPT, "systemRole": "You answer weather questions from the API's data."},
            "connection": connection,
            "apiData": {
                "description": "The current weather of a city.",
                "endpoint": "/v1/weather/{city}",
                "method": "GET",
                "urlParams": [{"key": "units", "value": "{unit}"}],
                "headers": [{"name": "Accept", "value": "application/json"}],
                "parameters": [
                    {"name": "city", "type": "string", "description": "The city, e.g. Lisbon.", "required": True},
                    {
                        "name": "unit",
                        "type": "string",
                        "description": "The temperature unit.",
                        "enum": ["metric", "imperial"],
                        "default": "metric",
                        "required": False,
                    },
                ],
                "testValues": [{"name": "city", "value": "Lisbon"}, {"name": "unit", "value": "metric"}],
                "limit": 10,
            },
        },
    }
