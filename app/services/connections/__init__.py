"""SQL and API connections, one job per module (imports run down this list):

- `network`: the network policy (`SMARTER_CORE_PLUGIN_NETWORKS`) and the upstream errors (502, 504).
- `rules`: supported engines and auth methods, default ports, the messages.
- `drivers`: one database connection opened under the policy (the engines' creator), TLS, SQLite files.
- `api_calls`: one API request, hop by hop under the policy, on the shared HTTP client.
- `pools`: the process's SQL engines and HTTP client (owned by the Runtime): `sql_connection`,
  `sql_read_only`, `api_request`.
- `queries`: lookups in scope, by id and by name; secret names resolved to ids; the plugins using one.
- `writes`: REST create, update, delete.
- `views`: rows, details and manifests of connections.
- `manifests`: the `SqlConnection` and `ApiConnection` kinds' apply, describe, delete and `get` table.
- `probe`: the `test/` action.
"""
