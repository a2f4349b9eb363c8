"""In-process CPU per write request through the ASGI app on PostgreSQL (no server, no load generator).

Issue 15's before/after measure: `uv run --frozen python -m bench.write_cpu [N]` seeds a small world, times N
REST creates and N manifest applies (new names), re-applies and `get/plugins/`, and lists the statements
one request runs. CPU is the whole process's (the httpx client included: see the `/healthz` floor).
"""

from __future__ import annotations

import asyncio
import json
import sys
import time

import httpx
from sqlalchemy import event

from app.config import Settings
from app.main import create_app
from app.schemas.manifests.plugin import example_manifest
from bench import seed

seed.TENANTS = 2
seed.PLUGINS_PER_TENANT = 3


def create_body(n: int) -> str:
    return json.dumps(
        {
            "name": f"cpu_create_{n}",
            "description": "measured",
            "tags": ["bench", f"t{n % 7}"],
            "prompt": {
                "provider": "openai",
                "systemRole": "You help.",
                "model": "gpt-4o-mini",
                "temperature": 0.5,
                "maxTokens": 256,
            },
            "selector": {"directive": "search_terms", "searchTerms": ["a", "b"]},
            "data": {
                "description": "facts",
                "staticData": {"k": n},
                "parameters": {"type": "object", "properties": {"q": {"type": "string", "description": "query"}}},
            },
            "pluginClass": "static",
        }
    )


def apply_body(n: int) -> str:
    manifest = example_manifest()
    manifest["metadata"]["name"] = f"cpu_apply_{n}"
    return json.dumps(manifest)


async def main(n: int, url: str) -> None:
    try:
        world = await seed.seed(url)
        app = create_app(Settings(database_url=url))
        headers = {"Authorization": f"Token {world.staff_keys[0]}", "Content-Type": "application/json"}
        async with app.router.lifespan_context(app):
            runtime = app.state.runtime
            statements: list[str] = []
            event.listen(runtime.engine.sync_engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
                for label, path, body in (
                    ("REST create with parts", "/api/v1/plugins/", create_body),
                    ("manifest apply (create)", "/api/v1/cli/apply/", apply_body),
                ):
                    for i in range(20):  # warm-up
                        r = await client.post(path, content=body(10_000 + i), headers=headers)
                        assert r.status_code in (200, 201), (r.status_code, r.text[:300])
                    statements.clear()
                    await client.post(path, content=body(20_000), headers=headers)
                    one = [s.split()[0] + " " + " ".join(s.split()[1:4]) for s in statements]
                    cpu0, wall0 = time.process_time(), time.perf_counter()
                    for i in range(n):
                        r = await client.post(path, content=body(i), headers=headers)
                        assert r.status_code in (200, 201), r.text[:300]
                    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
                    print(
                        f"{label}: {cpu / n * 1000:.2f} ms CPU, {wall / n * 1000:.2f} ms wall per request; "
                        f"{len(one)} statements:"
                    )
                    for s in one:
                        print("    ", s[:90])
                cpu0 = time.process_time()
                for _ in range(n):
                    await client.get("/healthz")
                print(f"client + framework floor (GET /healthz): {(time.process_time() - cpu0) / n * 1000:.2f} ms CPU")
                # re-apply the same manifest: idempotent, nothing written
                statements.clear()
                await client.post("/api/v1/cli/apply/", content=apply_body(0), headers=headers)
                print(f"manifest re-apply (unchanged): {len(statements)} statements")
                cpu0 = time.process_time()
                for i in range(n):
                    await client.post("/api/v1/cli/apply/", content=apply_body(i), headers=headers)
                print(f"manifest re-apply (unchanged): {(time.process_time() - cpu0) / n * 1000:.2f} ms CPU")
                statements.clear()
                r = await client.post("/api/v1/cli/get/plugins/", headers=headers)
                print(f"get/plugins/: {r.status_code} {len(statements)} statements")
                cpu0 = time.process_time()
                for _ in range(50):
                    await client.post("/api/v1/cli/get/plugins/", headers=headers)
                print(f"get/plugins/: {(time.process_time() - cpu0) / 50 * 1000:.2f} ms CPU")
    finally:
        await seed.drop_database(url)


if __name__ == "__main__":
    url = asyncio.run(seed.create_database())
    seed.migrate_database(url)
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 200, url))
