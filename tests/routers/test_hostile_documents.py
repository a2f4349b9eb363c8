"""Hostile documents (contract v2, "Hardening decisions"): YAML without aliases, anchors or merge keys,
64 levels of nesting, 256 KiB per stored JSON field, timestamps in range, and no request of the body limit
(1 MiB) blocking the event loop for more than 100 ms while `/healthz` is polled.

How the event loop is measured: in process, through the ASGI transport, a task polls `/healthz` every 5 ms
while the worst documents are sent one at a time; for each poll (the 5 ms sleep, its overrun while other
work held the loop, and the `/healthz` request) it records the wall time and the CPU time of the event
loop's thread (`time.thread_time`). The assertion is on the
loop thread's CPU time: it counts exactly the work that ran on the loop while `/healthz` waited (parsing,
validation, serialisation) and not the time the OS gave other processes, so it holds on a loaded 2-core CI
machine where wall time alone would flake. Work on worker threads does not count, by design.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from app.documents import MAX_DEPTH, MAX_STORED_BYTES
from tests.support import World

CLI = "/api/v1/cli"
PLUGINS = "/api/v1/plugins/"
YAML = {"Content-Type": "application/x-yaml"}
LIMIT = 1024 * 1024  # the body limit
BUDGET_MS = 100.0
POLL_SECONDS = 0.005


def nested(depth: int, leaf: Any = 1) -> Any:
    value = leaf
    for _ in range(depth - 1):
        value = {"k": value}
    return {"k": value} if depth else leaf


def manifest(name: str, **data: Any) -> dict[str, Any]:
    return {
        "apiVersion": "smarter.sh/v1",
        "kind": "Plugin",
        "metadata": {"name": name, "description": "hostile", "version": "1.0.0"},
        "spec": {
            "selector": {"directive": "always"},
            "prompt": {
                "provider": "openai",
                "systemRole": "s",
                "model": "gpt-4o-mini",
                "temperature": 0.5,
                "maxTokens": 256,
            },
            "data": {"description": "d", **data},
        },
    }


def merge_bomb(levels: int = 6) -> bytes:
    """The 508-byte document of the review: each level merges the previous one nine times."""
    lines = ["a0: &a0 {k0: 0}"]
    for i in range(1, levels + 1):
        merges = ", ".join(f"<<: *a{i - 1}" for _ in range(1))
        keys = ", ".join(f"k{i}_{j}: *a{i - 1}" for j in range(9))
        lines.append(f"a{i}: &a{i} {{{merges}, {keys}}}")
    return "\n".join(lines).encode()


def plain_merge() -> bytes:
    return b"apiVersion: smarter.sh/v1\nkind: Plugin\nmetadata:\n  <<: {name: merged}\n  version: 1.0.0\n"


def alias_amplifier(size: int = LIMIT - 1024) -> bytes:
    """`s: &s <10 KB>` then `l: [*s, *s, ...]` up to `size` bytes: 1000x more data than text."""
    head = "apiVersion: smarter.sh/v1\nkind: Plugin\nmetadata: {name: amplified}\nspec:\n  data:\n"
    head += f"    staticData:\n      s: &s {'x' * 10_000}\n      l: ["
    count = (size - len(head)) // 4
    return (head + ", ".join(["*s"] * count) + "]\n").encode()


def deep_yaml_flow(size: int = LIMIT - 16) -> bytes:
    return b"a: " + b"[" * (size // 2) + b"]" * (size // 2)


def deep_yaml_block(depth: int = MAX_DEPTH + 5) -> bytes:
    return "".join(f"{'  ' * i}k:\n" for i in range(depth)).encode() + b"  " * depth + b"v\n"


def deep_json(size: int = LIMIT - 16) -> bytes:
    return b'{"a": ' + b"[" * (size // 2 - 8) + b"]" * (size // 2 - 8) + b"}"


def flat_yaml_manifest(size: int = LIMIT - 4096) -> bytes:
    head = "apiVersion: smarter.sh/v1\nkind: Plugin\nmetadata: {name: flat}\nspec:\n  data:\n    staticData:\n"
    line = "      key_{:06d}: some words of text\n"
    count = (size - len(head)) // len(line.format(0))
    return (head + "".join(line.format(i) for i in range(count))).encode()


def flat_json(wrap: Callable[[dict[str, Any]], Any], size: int = LIMIT - 4096) -> bytes:
    """A body whose stored field is as large as the limit allows: many small keys."""
    count = size // 20
    return json.dumps(wrap({f"k{i:07d}": i for i in range(count)})).encode()


def many_small_values(size: int = LIMIT - 4096) -> bytes:
    """The JSON with the most values per byte: `[0,0,0,...]` (two bytes a value)."""
    return b'{"name": "many", "data": {"staticData": {"a": [' + b",".join([b"0"] * (size // 2)) + b"]}}}"


def unknown_fields(size: int = LIMIT - 4096) -> bytes:
    """A body made of fields no schema knows: one validation error each."""
    return json.dumps({f"f{i:06d}": 0 for i in range(size // 14)}).encode()


def refused(response: httpx.Response) -> bool:
    """A 400 or 422, or `validate`'s 200 with `valid: false`."""
    if response.status_code == 200:
        return response.json()["data"]["valid"] is False
    return response.status_code in (400, 422)


@dataclass
class HealthProbe:
    """Polls `/healthz` while `attack` runs; per request: wall ms and the loop thread's CPU ms."""

    client: httpx.AsyncClient
    samples: list[tuple[float, float]] = field(default_factory=list)

    async def poll(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            wall, cpu = time.perf_counter(), time.thread_time()
            # In process `/healthz` never suspends: the wait for the loop is the sleep's overrun.
            await asyncio.sleep(POLL_SECONDS)
            response = await self.client.get("/healthz")
            assert response.status_code == 200
            self.samples.append(((time.perf_counter() - wall) * 1000, (time.thread_time() - cpu) * 1000))

    async def during(self, attack: Awaitable[httpx.Response]) -> httpx.Response:
        stop = asyncio.Event()
        poller = asyncio.create_task(self.poll(stop))
        await asyncio.sleep(0.01)
        try:
            return await attack
        finally:
            stop.set()
            await poller

    def worst(self) -> tuple[float, float]:
        """The largest loop CPU time any `/healthz` waited, and the largest wall time (for the message)."""
        return max(cpu for _, cpu in self.samples), max(wall for wall, _ in self.samples)


# --- the rules ----------------------------------------------------------------------------------------------


async def test_yaml_merge_keys_anchors_and_aliases_are_refused_by_name(client: httpx.AsyncClient, world: World) -> None:
    headers = {**world["staff_a"].headers, **YAML}
    cases = {
        plain_merge(): "merge keys",
        merge_bomb(): "anchors",
        b"apiVersion: smarter.sh/v1\nkind: Plugin\nmetadata: &m {name: x}\nspec: {}\n": "anchors",
        alias_amplifier(16 * 1024): "anchors",
    }
    for document, named in cases.items():
        started = time.monotonic()
        response = await client.post(f"{CLI}/apply/", content=document, headers=headers)
        assert time.monotonic() - started < 5  # a bound on a bomb, not a latency target
        assert response.status_code == 400, response.text
        assert named in response.json()["error"]["description"]
        validated = await client.post(f"{CLI}/validate/", content=document, headers=headers)
        assert validated.status_code == 200
        assert named in validated.json()["data"]["errors"][0]["msg"]
    listed = await client.get(PLUGINS, headers=world["staff_a"].headers)
    assert listed.json() == []  # nothing was stored


async def test_nesting_beyond_64_levels_is_400_on_cli_and_422_on_rest(client: httpx.AsyncClient, world: World) -> None:
    headers = world["staff_a"].headers
    deep_manifest = json.dumps(manifest("deep", staticData=nested(MAX_DEPTH + 1))).encode()
    for document, media in (
        (deep_manifest, "application/json"),
        (deep_yaml_block(), "application/x-yaml"),
        (deep_yaml_flow(20_000), "application/x-yaml"),
        (deep_json(20_000), "application/json"),
    ):
        response = await client.post(f"{CLI}/apply/", content=document, headers={**headers, "Content-Type": media})
        assert response.status_code == 400, response.text
        assert "64 levels" in response.json()["error"]["description"]

    ok = manifest("at_the_limit", staticData=nested(MAX_DEPTH - 4))  # the document adds four levels
    applied = await client.post(f"{CLI}/apply/", json=ok, headers=headers)
    assert applied.status_code == 200, applied.text

    for body in (
        {"name": "deep", "data": {"staticData": nested(300)}},
        {"name": "deep", "annotations": [{"smarter.sh/deep": nested(300)}]},
        {"name": "deep", "data": {"parameters": {"type": "object", "properties": {"p": nested(300)}}}},
        {"name": "deep", "data": {"staticData": nested(MAX_DEPTH + 1)}},
    ):
        response = await client.post(PLUGINS, content=json.dumps(body), headers=headers)
        assert response.status_code == 422, response.text
        assert response.headers["content-type"] == "application/problem+json"
    raw = await client.post(PLUGINS, content=deep_json(20_000), headers={**headers, "Content-Type": "application/json"})
    assert raw.status_code == 422, raw.text
    assert "64 levels" in raw.json()["detail"]
    # The body counts: its own two levels and 62 of static data are 64.
    fine = await client.post(
        PLUGINS, json={"name": "fine", "data": {"staticData": nested(MAX_DEPTH - 2)}}, headers=headers
    )
    assert fine.status_code == 201, fine.text


async def test_stored_json_fields_are_capped_at_256_kib(client: httpx.AsyncClient, world: World) -> None:
    headers = world["staff_a"].headers
    big = {"text": "x" * MAX_STORED_BYTES}
    created = await client.post(PLUGINS, json={"name": "capped"}, headers=headers)
    plugin_id = created.json()["id"]
    for method, path, body in (
        ("POST", PLUGINS, {"name": "big", "data": {"staticData": big}}),
        ("PUT", f"{PLUGINS}{plugin_id}/data/", {"staticData": big}),
        ("PATCH", f"{PLUGINS}{plugin_id}/", {"annotations": [{"smarter.sh/big": ["y" * 1000] * 300}]}),
        ("PUT", f"{PLUGINS}{plugin_id}/data/", {"parameters": {"type": "object", "properties": {"p": big}}}),
    ):
        response = await client.request(method, path, json=body, headers=headers)
        assert response.status_code == 422, (path, response.text)
        assert "256 KiB" in response.text
    applied = await client.post(f"{CLI}/apply/", json=manifest("big", staticData=big), headers=headers)
    assert applied.status_code == 422, applied.text
    assert "256 KiB" in applied.json()["error"]["description"]
    just_under = {"text": "x" * (MAX_STORED_BYTES - 100)}
    applied = await client.post(f"{CLI}/apply/", json=manifest("under", staticData=just_under), headers=headers)
    assert applied.status_code == 200, applied.text


@pytest.mark.parametrize(
    "expires_at", ["9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00+14:00", "9999-12-31T23:00:00-01:00"]
)
async def test_timestamps_out_of_range_are_422(client: httpx.AsyncClient, world: World, expires_at: str) -> None:
    headers = world["staff_a"].headers
    response = await client.post("/api/v1/api-keys/", json={"name": "far", "expiresAt": expires_at}, headers=headers)
    assert response.status_code == 422, response.text
    assert "out of range" in response.text
    created = await client.post("/api/v1/api-keys/", json={"name": "near"}, headers=headers)
    key_id = created.json()["keyId"]
    patched = await client.patch(f"/api/v1/api-keys/{key_id}/", json={"expiresAt": expires_at}, headers=headers)
    assert patched.status_code == 422, patched.text


# --- the event loop -------------------------------------------------------------------------------------------


async def test_no_document_blocks_the_event_loop(client: httpx.AsyncClient, world: World) -> None:
    headers = world["staff_a"].headers
    json_headers = {**headers, "Content-Type": "application/json"}
    created = await client.post(PLUGINS, json={"name": "target"}, headers=headers)
    data_path = f"{PLUGINS}{created.json()['id']}/data/"
    cli_bodies: list[tuple[str, bytes, str]] = [
        ("merge bomb", merge_bomb(), "application/x-yaml"),
        ("alias amplifier", alias_amplifier(), "application/x-yaml"),
        ("deep YAML (flow)", deep_yaml_flow(), "application/x-yaml"),
        ("deep JSON", deep_json(), "application/json"),
        ("flat YAML manifest", flat_yaml_manifest(), "application/x-yaml"),
        ("flat JSON manifest", flat_json(lambda d: manifest("flat", staticData=d)), "application/json"),
        ("unknown fields", unknown_fields(), "application/json"),
        ("unknown spec fields", flat_json(lambda d: {**manifest("extra"), "spec": d}), "application/json"),
        (
            "wrong tag types",
            json.dumps({**manifest("tags"), "metadata": {"name": "t", "tags": [0] * 300_000}}).encode(),
            "application/json",
        ),
    ]
    attacks: list[tuple[str, Callable[[], Awaitable[httpx.Response]]]] = []
    for label, body, media in cli_bodies:
        for command in ("apply", "validate"):
            attacks.append(
                (
                    f"{command}: {label}",
                    lambda c=command, b=body, m=media: client.post(
                        f"{CLI}/{c}/", content=b, headers={**headers, "Content-Type": m}
                    ),
                )
            )
    rest_bodies: list[tuple[str, str, str, bytes]] = [
        ("deep JSON", "POST", PLUGINS, deep_json()),
        ("flat staticData", "POST", PLUGINS, flat_json(lambda d: {"name": "flat", "data": {"staticData": d}})),
        ("flat staticData", "PUT", data_path, flat_json(lambda d: {"staticData": d})),
        ("many small values", "POST", PLUGINS, many_small_values()),
        ("unknown fields", "POST", PLUGINS, unknown_fields()),
        ("unknown fields", "POST", "/api/v1/accounts/", unknown_fields()),
        ("wrong tag types", "POST", PLUGINS, json.dumps({"name": "t", "tags": [0] * 300_000}).encode()),
        ("many annotations", "POST", PLUGINS, json.dumps({"name": "t", "annotations": [{"a": 0}] * 100_000}).encode()),
        (
            "wrong search terms",
            "POST",
            PLUGINS,
            json.dumps({"name": "t", "selector": {"directive": "search_terms", "searchTerms": [0] * 300_000}}).encode(),
        ),
    ]
    for label, method, path, body in rest_bodies:
        attacks.append(
            (
                f"{method} {path}: {label}",
                lambda m=method, p=path, b=body: client.request(m, p, content=b, headers=json_headers),
            )
        )

    worst: dict[str, tuple[float, float]] = {}
    assert all(len(body) <= LIMIT for _, body, _ in cli_bodies)
    assert all(len(body) <= LIMIT for *_, body in rest_bodies)
    for label, attack in attacks:
        probe = HealthProbe(client)
        response = await probe.during(attack())
        assert refused(response), (label, response.status_code, response.text[:300])
        worst[label] = probe.worst()
    report = "\n".join(f"{label}: loop CPU {cpu:.0f} ms (wall {wall:.0f} ms)" for label, (cpu, wall) in worst.items())
    assert all(cpu <= BUDGET_MS for cpu, _ in worst.values()), report
    assert (await client.get(PLUGINS, headers=headers)).json()[0]["name"] == "target"  # nothing stored
