"""The plugin domain, one job per module (imports run down this list):

- `statements`: the Core SELECTs (the plugin view with its owner, tags and parts; page ids; the `get` table).
- `rules`: defaults and shapes of the parts, the name rule, the messages.
- `views`: the presenter: a view decoded by column name, and the row, detail, part, manifest and `get` row.
- `snapshots`: the `plugin` cache of views and their serialised bodies (invalidated by `cache_rules`).
- `rows`: the `plugin_row` cache of the lists' rows as JSON (read without the parts).
- `lists`: pages and complete lists from the rows.
- `inserts`: a new plugin, its parts and tag links in one PostgreSQL statement returning its view.
- `writes`: REST create, update, delete, clone and parts (Core inserts with RETURNING).
- `manifests`: the `Plugin` kind's apply, describe, delete and `get` table (rows from the snapshots; each
  table kept in the `plugin_table` cache until the `plugin` cache's generation moves).
- `connection_refs`, `connected_views`, `connected`: SQL and API plugins' connection, data and manifests.

The routers use the names below; the manifest broker uses `manifests`.
"""

from app.services.plugins.connected import write_class_data
from app.services.plugins.lists import PluginFilters, all_plugins, list_plugins
from app.services.plugins.rules import FORBIDDEN, NOT_FOUND, STATIC_ONLY
from app.services.plugins.snapshots import (
    PLUGIN_CACHE,
    PluginSnapshot,
    cached_part,
    detail_body,
    plugin_cache,
    readable_snapshot,
)
from app.services.plugins.views import detail_json
from app.services.plugins.writes import (
    clone_plugin,
    create_plugin,
    delete_plugin,
    update_plugin,
    write_data,
    write_prompt,
    write_selector,
)

__all__ = [
    "FORBIDDEN",
    "NOT_FOUND",
    "PLUGIN_CACHE",
    "STATIC_ONLY",
    "PluginFilters",
    "PluginSnapshot",
    "all_plugins",
    "cached_part",
    "clone_plugin",
    "create_plugin",
    "delete_plugin",
    "detail_body",
    "detail_json",
    "list_plugins",
    "plugin_cache",
    "readable_snapshot",
    "update_plugin",
    "write_class_data",
    "write_data",
    "write_prompt",
    "write_selector",
]
