"""The plugin runtime's bench data: an account of 1,000 `search_terms` plugins (10 terms each), 50 platform
plugins (40 `llm`, 10 `search_terms`), a staff key for the account, and the 30-word prompt of the selection.

About 40 of the account's plugins match the prompt (a shared two-word term, a unique product term and a
topic term), so the selection fills its default 20 tools; the platform's `llm` plugins are ranked as well.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.identifiers import PLATFORM_ACCOUNT_NUMBER
from app.models import Account, PluginDataStatic, PluginMeta, PluginPrompt, PluginSelector, UserProfile
from app.services import accounts, api_keys, profiles, users

ACCOUNT_PLUGINS = 1_000
PLATFORM_PLUGINS = 50
PLATFORM_LLM = 40
TERMS_PER_PLUGIN = 10
TOPICS = 500
REGIONS = 50
SYLLABLES = ("ba", "ko", "ri", "mu", "ten", "sol", "var", "pel", "dor", "fin")
SYLLABLES += ("gal", "hum", "jor", "lis", "nep", "quo", "ras", "tav", "wen", "zep")
REGION_NAMES = tuple(f"{a}{b}land" for a in SYLLABLES[:10] for b in SYLLABLES[10:15])


def made_up(n: int) -> str:
    """Distinct made-up words of 6 to 9 letters (product and topic names, which the fuzzy index takes)."""
    count = len(SYLLABLES)
    return SYLLABLES[n % count] + SYLLABLES[(n // count) % count] + SYLLABLES[(n // count**2) % count]


def topic(n: int) -> str:
    return made_up(1_000 + n)


# 30 words: "<region 7> sales" matches 20 plugins, product 42 one, topic 123 about 16 (and their one-typo kin).
PROMPT = (
    f"Please compare the {REGION_NAMES[7]} sales numbers with last quarter and tell me which {made_up(42)} and "
    f"{topic(123)} items shipped late to our biggest customers in the northern warehouses earlier this week"
)
LLM_TOPICS = ("shipping delays", "warehouse stock", "customer orders", "quarterly sales", "weather alerts")


def account_terms(n: int) -> list[str]:
    return [
        made_up(n),
        f"{REGION_NAMES[n % REGIONS]} sales",
        *(topic((n * 7 + k) % TOPICS) for k in range(TERMS_PER_PLUGIN - 2)),
    ]


async def _insert(
    session: AsyncSession, profile_id: int, account_id: int, rows: list[tuple[str, str, dict[str, Any], str]]
) -> list[int]:
    """(name, description, selector, data description) rows of static plugins with every part."""
    result = await session.execute(
        insert(PluginMeta).returning(PluginMeta.id, sort_by_parameter_order=True),
        [
            {
                "name": name,
                "description": description,
                "version": "1.0.0",
                "annotations": [],
                "plugin_class": "static",
                "user_profile_id": profile_id,
                "account_id": account_id,
            }
            for name, description, _, _ in rows
        ],
    )
    ids = [row[0] for row in result]
    await session.execute(
        insert(PluginPrompt),
        [
            {
                "plugin_id": plugin_id,
                "provider": "openai",
                "system_role": "You answer from the plugin's data.",
                "model": "gpt-4o-mini",
                "temperature": 0.2,
                "max_completion_tokens": 1024,
            }
            for plugin_id in ids
        ],
    )
    await session.execute(
        insert(PluginSelector), [{"plugin_id": plugin_id, **row[2]} for plugin_id, row in zip(ids, rows, strict=True)]
    )
    await session.execute(
        insert(PluginDataStatic),
        [
            {
                "plugin_id": plugin_id,
                "description": row[3],
                "parameters": None,
                "static_data": {"summary": row[1], "items": list(range(10)), "id": plugin_id},
            }
            for plugin_id, row in zip(ids, rows, strict=True)
        ],
    )
    return ids


async def seed_runtime(session: AsyncSession) -> str:
    """The account, its staff key and the plugins; returns the key."""
    account = await accounts.create_account(session, name="bench_runtime", company_name="Bench Runtime Inc.")
    staff = await users.create_user(
        session, username="bench_runtime_staff", email="runtime@bench.example.com", is_staff=True
    )
    profile = await profiles.add_profile(session, staff, account)
    _, key = await api_keys.issue_key(session, user=staff, profile=profile, name="bench_runtime_key")
    rows = [
        (
            f"runtime_plugin_{n:04d}",
            f"Runtime plugin {n}.",
            {"directive": "search_terms", "search_terms": account_terms(n)},
            f"Facts about product {n}.",
        )
        for n in range(ACCOUNT_PLUGINS)
    ]
    await _insert(session, profile.id, account.id, rows)
    platform_id, platform_profile = (
        await session.execute(
            select(Account.id, UserProfile.id)
            .join(UserProfile, UserProfile.account_id == Account.id)
            .where(Account.account_number == PLATFORM_ACCOUNT_NUMBER)
            .order_by(UserProfile.id)
            .limit(1)
        )
    ).one()
    platform_rows = []
    for n in range(PLATFORM_PLUGINS):
        topic = LLM_TOPICS[n % len(LLM_TOPICS)]
        if n < PLATFORM_LLM:
            selector: dict[str, Any] = {"directive": "llm", "search_terms": []}
        else:
            selector = {"directive": "search_terms", "search_terms": [f"platform{n}", topic]}
        platform_rows.append((f"platform_plugin_{n:02d}", f"Platform {topic} {n}.", selector, f"Reports on {topic}."))
    await _insert(session, platform_profile, platform_id, platform_rows)
    return key
