"""The `SqlConnection` and `ApiConnection` manifests, as the SDK's `SAMSqlConnection` and `SAMApiConnection`:
`spec.connection` holds the connection's fields (`app.schemas.connections`: the same rules as REST), with
credentials as the names of secrets of the acting account.
"""

from __future__ import annotations

from typing import Any, Literal

from app.schemas.connections import ApiConnectionFields, SqlConnectionFields
from app.schemas.manifests.base import API_VERSION, SAMManifest, SAMMetadata, SAMModel


class SqlConnectionSpec(SAMModel):
    connection: SqlConnectionFields


class ApiConnectionSpec(SAMModel):
    connection: ApiConnectionFields


class SqlConnectionManifest(SAMManifest):
    kind: Literal["SqlConnection"]
    metadata: SAMMetadata
    spec: SqlConnectionSpec


class ApiConnectionManifest(SAMManifest):
    kind: Literal["ApiConnection"]
    metadata: SAMMetadata
    spec: ApiConnectionSpec


def sql_example() -> dict[str, Any]:
    """Applies as is (a password would name a secret of your account: `password: <secret name>`)."""
    return {
        "apiVersion": API_VERSION,
        "kind": "SqlConnection",
        "metadata": {
            "name": "example_sql_connection",
            "description": "An example Smarter API manifest for a SqlConnection",
            "version": "1.0.0",
            "tags": ["example"],
            "annotations": [{"smarter.sh/connection/purpose": "example"}],
        },
        "spec": {
            "connection": {
                "dbEngine": "django.db.backends.postgresql",
                "hostname": "db.example.com",
                "port": 5432,
                "database": "sales",
                "username": "reader",
                "authenticationMethod": "none",
                "timeout": 10,
                "useSsl": False,
                "poolSize": 5,
                "maxOverflow": 10,
            }
        },
    }


def api_example() -> dict[str, Any]:
    """Applies as is (`authMethod` token/basic/api_key would need `apiKey: <secret name>`)."""
    return {
        "apiVersion": API_VERSION,
        "kind": "ApiConnection",
        "metadata": {
            "name": "example_api_connection",
            "description": "An example Smarter API manifest for an ApiConnection",
            "version": "1.0.0",
            "tags": ["example"],
            "annotations": [{"smarter.sh/connection/purpose": "example"}],
        },
        "spec": {"connection": {"baseUrl": "https://api.example.com/v1/", "authMethod": "none", "timeout": 10}},
    }
