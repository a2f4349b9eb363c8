"""The ceiling: a plain FastAPI app with one `async def` route returning a dict.

Served with the same uvicorn flags as the service (`uvicorn bench.ceiling:create_app --factory`), it is what
one worker of this framework stack can do on this machine with no auth, no database and no middleware.
"""

from __future__ import annotations

from fastapi import FastAPI


def create_app() -> FastAPI:
    app = FastAPI(title="bench-ceiling", openapi_url=None, docs_url=None, redoc_url=None)

    @app.get("/")
    async def hello() -> dict[str, str]:
        return {"message": "Hello, World!"}

    return app
