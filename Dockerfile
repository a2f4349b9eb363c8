# Build: dependencies first (cached layer), then the project; no dev dependencies in the image.
FROM ghcr.io/astral-sh/uv:python3.11-bookworm-slim AS builder
ENV UV_COMPILE_BYTECODE=1 UV_LINK_MODE=copy UV_PYTHON_DOWNLOADS=0
WORKDIR /srv
COPY pyproject.toml uv.lock ./
RUN --mount=type=cache,target=/root/.cache/uv uv sync --frozen --no-dev --no-install-project
COPY README.md alembic.ini ./
COPY app ./app
COPY migrations ./migrations
RUN --mount=type=cache,target=/root/.cache/uv uv sync --frozen --no-dev

FROM python:3.11-slim-bookworm
RUN groupadd --system app && useradd --system --gid app --home-dir /srv --no-create-home app
WORKDIR /srv
# The project is installed editable: `app` is imported from /srv/app, next to alembic.ini and migrations/.
COPY --from=builder --chown=app:app /srv /srv
ENV PATH="/srv/.venv/bin:$PATH" PYTHONUNBUFFERED=1
USER app
EXPOSE 9357
# The same entrypoint the tests start: it migrates, bootstraps an empty database, then serves.
# Set DATABASE_URL (postgresql://...) for production; the default is SQLite under /srv/var.
CMD ["smarter-core", "serve", "--host", "0.0.0.0"]
