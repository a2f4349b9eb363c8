# The two commands of the README (`make run`, `make test`) set everything up on a machine with only
# Python and make: they install uv if it is missing, then sync the locked environment.

PYTHON ?= python3
UV := $(shell command -v uv 2>/dev/null || echo "$(PYTHON) -m uv")
# uv builds the environment with the interpreter make was given (any Python >= 3.11), never a download.
export UV_PYTHON ?= $(shell $(PYTHON) -c 'import sys; print(sys.executable)')
export UV_PYTHON_DOWNLOADS ?= never
TEST_DATABASE_URL ?= postgresql+asyncpg://postgres@127.0.0.1:5432/
PYTEST_ARGS ?=

.PHONY: run test test-postgres lint format migrate check-migrations bench sync uv

uv:
	@$(UV) --version >/dev/null 2>&1 || $(PYTHON) -m pip install --quiet --user uv \
		|| $(PYTHON) -m pip install --quiet --break-system-packages uv

sync: uv
	@$(UV) sync --frozen --quiet

run: sync  ## migrate the embedded SQLite database (var/), bootstrap on first start, serve on 127.0.0.1:9357
	$(UV) run --frozen smarter-core serve

test: sync  ## the whole suite on SQLite (PostgreSQL-only tests are skipped)
	env -u TEST_DATABASE_URL $(UV) run --frozen pytest $(PYTEST_ARGS)

test-postgres: sync  ## the whole suite on a fresh PostgreSQL database
	TEST_DATABASE_URL='$(TEST_DATABASE_URL)' $(UV) run --frozen pytest $(PYTEST_ARGS)

lint: sync
	$(UV) run --frozen ruff check app tests migrations bench
	$(UV) run --frozen ruff format --check app tests migrations bench
	$(UV) run --frozen mypy app

format: sync
	$(UV) run --frozen ruff check --fix app tests migrations bench
	$(UV) run --frozen ruff format app tests migrations bench

migrate: sync
	$(UV) run --frozen smarter-core migrate

check-migrations: sync  ## upgrade, drift check and downgrade on SQLite and PostgreSQL
	TEST_DATABASE_URL='$(TEST_DATABASE_URL)' $(UV) run --frozen python -m tests.migration_roundtrip

bench: sync  ## the benchmark (needs PostgreSQL); results go to bench/results/
	$(UV) run --frozen python -m bench
