"""How SQL and API plugins' data shows in a manifest's `spec` (the SDK's `SAMSqlPluginSpec`/`SAMApiPluginSpec`).

`spec.connection` is the connection's name; `sqlData`/`apiData` the data in the SDK's spelling, with this
service's `description` only when one is set (the tool description falls back to the plugin's own).
"""

from __future__ import annotations

from typing import Any


def sql_data_spec(row: dict[str, Any]) -> dict[str, Any]:
    return _described(
        row,
        {
            "sqlQuery": row["sql_query"],
            "parameters": row["parameters"],
            "testValues": row["test_values"],
            "limit": row["result_limit"],
        },
    )


def api_data_spec(row: dict[str, Any]) -> dict[str, Any]:
    return _described(
        row,
        {
            "endpoint": row["endpoint"],
            "method": row["method"],
            "urlParams": row["url_params"],
            "headers": row["headers"],
            "body": row["body"],
            "parameters": row["parameters"],
            "testValues": row["test_values"],
            "limit": row["result_limit"],
        },
    )


def _described(row: dict[str, Any], spec: dict[str, Any]) -> dict[str, Any]:
    return {"description": row["description"], **spec} if row["description"] else spec


def connected_spec(
    plugin_class: str, sql_data: dict[str, Any] | None, api_data: dict[str, Any] | None
) -> dict[str, Any]:
    """The class's spec entries (`connection` and `sqlData` or `apiData`); empty while the plugin has no data."""
    if plugin_class == "sql" and sql_data is not None:
        return {"connection": sql_data["connection"], "sqlData": sql_data_spec(sql_data)}
    if plugin_class == "api" and api_data is not None:
        return {"connection": api_data["connection"], "apiData": api_data_spec(api_data)}
    return {}


def tool_description(plugin_description: str, data: dict[str, Any] | None) -> str:
    """A plugin's tool description: its data's `description`, else the plugin's own (metadata) description."""
    described = (data or {}).get("description")
    return described if described else plugin_description
