"""The official SDK (`smarter-api==0.6.0`) cannot page: `plugins.list()` is one GET without `limit` and
`plugins.find(name)` scans it. Both must see every plugin, past our page size (100) and past the largest
page (1,000), against a live server. Plugins are seeded with bulk Core inserts (as `bench.seed` does)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
from smarter import Smarter
from smarter.core.exceptions import ResourceNotFoundError
from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import create_async_engine

from app.models import PluginDataStatic, PluginMeta, PluginPrompt, PluginSelector, User, UserProfile
from tests import support
from tests.live import live_server

pytestmark = pytest.mark.slow


@dataclass
class Live:
    url: str
    base_url: str
    admin_key: str


@pytest.fixture(scope="module")
def live() -> Iterator[Live]:
    url = asyncio.run(support.fresh_database_url())
    try:
        with live_server(url) as server:
            yield Live(url=url, base_url=server.base_url, admin_key=server.admin_key)
    finally:
        if url.startswith("postgresql"):
            asyncio.run(support.drop_postgres_database(url))


async def _seed_plugins(url: str, first: int, count: int) -> None:
    """`count` static plugins named `bulk_<n>` owned by the admin's profile, with their three parts."""
    engine = create_async_engine(url)
    try:
        async with engine.begin() as conn:
            owner = (
                await conn.execute(
                    select(UserProfile.id, UserProfile.account_id)
                    .join(User, User.id == UserProfile.user_id)
                    .where(User.username == "admin")
                )
            ).one()
            rows = [
                {
                    "name": f"bulk_{n:05d}",
                    "description": f"Bulk plugin {n}.",
                    "version": "1.0.0",
                    "annotations": [],
                    "plugin_class": "static",
                    "user_profile_id": owner.id,
                    "account_id": owner.account_id,
                }
                for n in range(first, first + count)
            ]
            result = await conn.execute(insert(PluginMeta).returning(PluginMeta.id, sort_by_parameter_order=True), rows)
            ids = [row[0] for row in result]
            await conn.execute(
                insert(PluginPrompt),
                [
                    {
                        "plugin_id": i,
                        "provider": "openai",
                        "system_role": "s",
                        "model": "gpt-4o-mini",
                        "temperature": 0.5,
                        "max_completion_tokens": 256,
                    }
                    for i in ids
                ],
            )
            await conn.execute(insert(PluginSelector), [{"plugin_id": i, "directive": "always"} for i in ids])
            await conn.execute(
                insert(PluginDataStatic),
                [{"plugin_id": i, "description": "d", "parameters": None, "static_data": {"n": i}} for i in ids],
            )
    finally:
        await engine.dispose()


def test_sdk_lists_and_finds_every_plugin(live: Live) -> None:
    with Smarter(api_key=live.admin_key, base_url=live.base_url, max_retries=0, timeout=60) as client:
        for total in (105, 1001):
            have = len(client.plugins.list())
            asyncio.run(_seed_plugins(live.url, have, total - have))
            listed = client.plugins.list()
            assert len(listed) == total
            assert len({plugin.id for plugin in listed}) == total
            assert [p.id for p in listed] == sorted((p.id for p in listed), reverse=True)  # newest first
            assert client.plugins.find("bulk_00000").name == "bulk_00000"  # the oldest: the list's last row
            assert client.plugins.find(f"bulk_{total - 1:05d}").name == f"bulk_{total - 1:05d}"
        with pytest.raises(ResourceNotFoundError):
            client.plugins.find("no_such_plugin")

    # A page is still a page, with its Link; the complete list has none.
    with httpx.Client(base_url=live.base_url, headers={"Authorization": f"Token {live.admin_key}"}) as http:
        page = http.get("/api/v1/plugins/", params={"limit": 1000})
        assert len(page.json()) == 1000
        assert 'rel="next"' in page.headers["link"]
        rest = http.get("/api/v1/plugins/", params={"limit": 1000, "offset": 1000})
        assert len(rest.json()) == 1
        assert "link" not in rest.headers
        complete = http.get("/api/v1/plugins/")
        assert len(complete.json()) == 1001
        assert "link" not in complete.headers
