"""`POST /api/v1/plugins/selection/` through the app: the contract's rules, the original's bugs, tenancy, cache."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import text

from app.runtime import Runtime
from tests.plugin_runtime.helpers import SELECTION, make_plugin, names, select
from tests.support import World, statements


async def test_whole_words_not_substrings(client: httpx.AsyncClient, world: World) -> None:
    # The original matched "api" inside "capital".
    await make_plugin(client, world, "staff_a", "api_docs", terms=["api"])
    assert names(await select(client, world, "staff_a", "What is the capital of France?")) == []
    answer = await select(client, world, "staff_a", "Which API should I call?")
    assert names(answer) == ["api_docs"]
    assert answer["selected"][0]["directive"] == "search_terms"
    assert answer["selected"][0]["matchedTerm"] == "api"
    assert answer["selected"][0]["score"] is None


async def test_normalisation_any_order_and_fuzzy(client: httpx.AsyncClient, world: World) -> None:
    await make_plugin(client, world, "staff_a", "sao_paulo", terms=["São Paulo weather"])
    await make_plugin(client, world, "staff_a", "stocks", terms=["stock price"])
    await make_plugin(client, world, "staff_a", "rain", terms=["rain"])
    await make_plugin(client, world, "staff_a", "camel", terms=["weather report"])
    # Unicode folded, punctuation as spaces, any order.
    assert names(await select(client, world, "staff_a", "weather in SAO-PAULO?")) == ["sao_paulo"]
    assert names(await select(client, world, "staff_a", "the price of this stock")) == ["stocks"]
    # camelCase split in the prompt.
    assert names(await select(client, world, "staff_a", "show the weatherReport")) == ["camel"]
    # The original's Levenshtein branch could never match: one edit is allowed in words of 6+ letters.
    assert names(await select(client, world, "staff_a", "Sao Paulo wether")) == ["sao_paulo"]
    assert names(await select(client, world, "staff_a", "will it rian")) == []
    assert names(await select(client, world, "staff_a", "will it rain")) == ["rain"]


async def test_history_user_turns_only(client: httpx.AsyncClient, world: World) -> None:
    await make_plugin(client, world, "staff_a", "weather", terms=["weather"])
    history: list[dict[str, Any]] = [
        {"role": "assistant", "content": "The weather is fine."},
        {"role": "system", "content": "weather"},
        {"role": "assistant", "content": None, "tool_calls": [{"id": "x"}]},
    ]
    assert names(await select(client, world, "staff_a", "and tomorrow?", history=history)) == []
    history.append({"role": "user", "content": "How is the weather in Lisbon?"})
    answer = await select(client, world, "staff_a", "and tomorrow?", history=history)
    assert names(answer) == ["weather"]
    assert answer["selected"][0]["matchedTerm"] == "weather"


async def test_order_always_terms_llm_and_max_tools(client: httpx.AsyncClient, world: World) -> None:
    prompt = {"provider": "openai", "systemRole": "You know currencies.", "model": "gpt-4o", "temperature": 0.1}
    await make_plugin(
        client,
        world,
        "staff_a",
        "currency_rates",
        directive="llm",
        description="Exchange rates",
        data_description="Current exchange rates of the euro against other currencies.",
        prompt=prompt,
    )
    await make_plugin(
        client, world, "staff_a", "recipes", directive="llm", data_description="Cooking recipes and ingredients."
    )
    await make_plugin(client, world, "staff_a", "euro_terms", terms=["euro"])
    await make_plugin(client, world, "staff_a", "greeter", directive="always")
    answer = await select(client, world, "staff_a", "What is the exchange rate of the euro today?")
    # The original never selected `llm` plugins; the unrelated one scores nothing and is left out.
    assert names(answer) == ["greeter", "euro_terms", "currency_rates"]
    assert [item["directive"] for item in answer["selected"]] == ["always", "search_terms", "llm"]
    llm = answer["selected"][2]
    assert llm["score"] > 0
    assert llm["matchedTerm"] is None
    assert llm["kind"] == "Plugin"
    assert llm["prompt"] == {
        "provider": "openai",
        "systemRole": "You know currencies.",
        "model": "gpt-4o",
        "temperature": 0.1,
        "maxCompletionTokens": 2048,
    }
    assert [tool["function"]["name"] for tool in answer["tools"]] == names(answer)
    limited = await select(client, world, "staff_a", "What is the exchange rate of the euro today?", maxTools=2)
    assert names(limited) == ["greeter", "euro_terms"]
    assert len(limited["tools"]) == 2


async def test_llm_ranking_by_relevance(client: httpx.AsyncClient, world: World) -> None:
    await make_plugin(
        client, world, "staff_a", "flights", directive="llm", data_description="Flight times and airport delays."
    )
    await make_plugin(
        client,
        world,
        "staff_a",
        "airport_guide",
        directive="llm",
        data_description="Airport maps, airport lounges, airport parking.",
    )
    answer = await select(client, world, "staff_a", "Where can I park at the airport?")
    assert names(answer)[0] == "airport_guide"
    scores = [item["score"] for item in answer["selected"]]
    assert scores == sorted(scores, reverse=True)


async def test_tenancy_and_name_collisions(client: httpx.AsyncClient, world: World) -> None:
    await make_plugin(client, world, "staff_b", "tenant_b_weather", terms=["weather"])
    await make_plugin(client, world, "superuser", "weather", terms=["weather"], static_data={"who": "platform"})
    platform_only = await make_plugin(client, world, "superuser", "platform_news", terms=["weather"])
    # Tenant A sees the platform's plugins, never tenant B's.
    assert names(await select(client, world, "staff_a", "weather please")) == ["weather", "platform_news"]
    assert names(await select(client, world, "regular_a", "weather please")) == ["weather", "platform_news"]
    own = await make_plugin(client, world, "staff_a", "weather", terms=["weather"], static_data={"who": "tenant a"})
    answer = await select(client, world, "staff_a", "weather please")
    # On a name both use, the account's own comes first and the platform's is left out.
    assert [item["id"] for item in answer["selected"]] == [own["id"], platform_only["id"]]
    assert names(await select(client, world, "staff_b", "weather please")) == [
        "tenant_b_weather",
        "weather",
        "platform_news",
    ]


async def test_account_number(client: httpx.AsyncClient, world: World) -> None:
    await make_plugin(client, world, "staff_b", "tenant_b_weather", terms=["weather"])
    multi_a = await select(client, world, "multi", "weather")
    assert names(multi_a) == []
    multi_b = await select(client, world, "multi", "weather", accountNumber=world.account_b.account_number)
    assert names(multi_b) == ["tenant_b_weather"]
    refused = await client.post(
        SELECTION,
        json={"prompt": "weather", "accountNumber": world.account_b.account_number},
        headers=world["staff_a"].headers,
    )
    assert refused.status_code == 422, refused.text
    superuser = await select(client, world, "superuser", "weather", accountNumber=world.account_b.account_number)
    assert names(superuser) == ["tenant_b_weather"]


async def test_plugin_writes_reach_the_cached_index(client: httpx.AsyncClient, world: World, runtime: Runtime) -> None:
    plugin = await make_plugin(client, world, "staff_a", "weather", terms=["weather"])
    assert names(await select(client, world, "staff_a", "weather")) == ["weather"]
    # A selection over a cached index reads no plugin rows.
    with statements(runtime) as seen:
        assert names(await select(client, world, "staff_a", "weather")) == ["weather"]
    assert not [sql for sql in seen if "plugin_meta" in sql], seen
    headers = world["staff_a"].headers
    response = await client.put(
        f"/api/v1/plugins/{plugin['id']}/selector/",
        json={"directive": "search_terms", "searchTerms": ["forecast"]},
        headers=headers,
    )
    assert response.status_code == 200, response.text
    assert names(await select(client, world, "staff_a", "weather")) == []
    assert names(await select(client, world, "staff_a", "forecast")) == ["weather"]
    await make_plugin(client, world, "staff_a", "new_one", terms=["forecast"])
    assert names(await select(client, world, "staff_a", "forecast")) == ["weather", "new_one"]
    assert (await client.delete(f"/api/v1/plugins/{plugin['id']}/", headers=headers)).status_code == 204
    assert names(await select(client, world, "staff_a", "forecast")) == ["new_one"]


async def test_tool_names_of_ids_past_ten_thousand(client: httpx.AsyncClient, world: World, runtime: Runtime) -> None:
    # The original parsed tool names back with int(name[-4:]): id 10007 dispatched to plugin 7.
    low = await make_plugin(client, world, "staff_a", "low_id", terms=["lookup"], static_data={"v": "low"})
    async with runtime.engine.begin() as conn:
        if runtime.engine.dialect.name == "postgresql":
            await conn.execute(text("SELECT setval(pg_get_serial_sequence('plugin_meta', 'id'), :n)"), {"n": 10000})
        else:  # SQLite hands out max(rowid) + 1: a row at 10000 - 1 + low's id makes the next id end like low's
            await conn.execute(
                text(
                    "INSERT INTO plugin_meta (id, account_id, user_profile_id, name, description, version, "
                    "plugin_class, annotations, created_at, updated_at) SELECT :n, account_id, user_profile_id, "
                    "'filler', '', '1.0.0', 'static', annotations, created_at, updated_at FROM plugin_meta "
                    "WHERE id = :low"
                ),
                {"n": 10000 + low["id"] - 1, "low": low["id"]},
            )
    high = await make_plugin(client, world, "staff_a", "high_id", terms=["lookup"], static_data={"v": "high"})
    assert high["id"] >= 10000
    answer = await select(client, world, "staff_a", "lookup")
    assert {item["name"]: item["id"] for item in answer["selected"]} == {"low_id": low["id"], "high_id": high["id"]}
    called = await client.post(
        f"/api/v1/plugins/{high['id']}/call/",
        json={"name": "high_id", "arguments": '{"inquiry_type": "v"}'},
        headers=world["staff_a"].headers,
    )
    assert called.status_code == 200, called.text
    assert called.json()["result"] == "high"


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"prompt": 5},
        {"prompt": None},
        {"prompt": "x", "maxTools": 0},
        {"prompt": "x", "maxTools": 129},
        {"prompt": "x", "maxTools": "many"},
        {"prompt": "x", "format": "gemini"},
        {"prompt": "x", "history": "weather"},
        {"prompt": "x", "history": [{"content": "no role"}]},
        {"prompt": "x", "history": [{"role": "user", "content": {"nested": True}}]},
        {"prompt": "x" * 40_000},
        {"prompt": "x", "history": [{"role": "user", "content": "y"}] * 300},
        {"prompt": "x", "accountNumber": "0000-0000-0000"},
        {"prompt": "x", "unknown": 1},
        [],
        "prompt",
    ],
)
async def test_bad_bodies_are_422(client: httpx.AsyncClient, world: World, body: Any) -> None:
    response = await client.post(SELECTION, json=body, headers=world["staff_a"].headers)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")


@pytest.mark.parametrize(
    "prompt", ["", " ", "🙂" * 1000, "\x00\x01", "ǅ" * 50, "a-b_c.d" * 500, "İstanbul ΣΊΣΥΦΟΣ", "x" * 32_768]
)
async def test_odd_prompts_answer(client: httpx.AsyncClient, world: World, prompt: str) -> None:
    await make_plugin(client, world, "staff_a", "weather", terms=["weather"])
    await make_plugin(client, world, "staff_a", "anything", directive="llm", data_description="anything at all")
    answer = await select(client, world, "staff_a", prompt)
    assert "weather" not in names(answer)


async def test_needs_a_key(client: httpx.AsyncClient, world: World) -> None:
    assert (await client.post(SELECTION, json={"prompt": "x"})).status_code == 401
