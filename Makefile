# OpenAgg developer commands. `make run` and `make test` work on a fresh machine.
PYTHON ?= python3
VENV ?= .venv
SDK_VENV ?= .venv-sdk
BIN = $(VENV)/bin

.PHONY: run test test-sqlite test-postgresql lint bench fuzz clean

$(BIN)/.installed: pyproject.toml src/openagg/ofx/_speedups.c
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e ".[dev]"
	touch $@

# MX's official SDK pins pydantic 1, so it lives in its own venv and the
# compatibility tests drive it as a separate client process.
$(SDK_VENV)/bin/.installed:
	$(PYTHON) -m venv $(SDK_VENV)
	$(SDK_VENV)/bin/pip install -q mx-platform-python==1.12.0
	touch $@

# The connector shipped as its own package that the tests install, as a third party's
# would be (not in the venv of `make run` until the tests have run).
$(BIN)/.test-plugins: $(BIN)/.installed tests/connector_plugin/pyproject.toml
	$(BIN)/pip install -q --no-deps -e tests/connector_plugin
	touch $@

# Actual Budget's server from npm (pinned in its package-lock.json), whose SimpleFIN
# client a test points at OpenAgg. Install scripts stay off (they would download);
# better-sqlite3 is built against this machine's Node headers instead. Without npm the
# test skips (and fails in CI, under OPENAGG_REQUIRE_ALL=1).
ACTUAL = tests/clients/actual_budget
$(ACTUAL)/node_modules/.installed: $(ACTUAL)/package-lock.json
	@if command -v npm >/dev/null; then \
		cd $(ACTUAL) && npm ci -q --ignore-scripts --no-audit --no-fund && \
		npm rebuild -q better-sqlite3 bcrypt argon2 --nodedir="$$(dirname "$$(dirname "$$(command -v node)")")" && \
		touch node_modules/.installed; \
	else echo "npm not found: the Actual Budget test will skip"; fi

run: $(BIN)/.installed
	$(BIN)/openagg serve --demo

# The whole suite runs twice: on SQLite files, then on PostgreSQL (a database per
# test on OPENAGG_TEST_PG, default postgres@127.0.0.1:5432; without a server the
# second run stops with a note, and fails under OPENAGG_REQUIRE_ALL=1).
PYTEST = OPENAGG_SDK_PYTHON=$(SDK_VENV)/bin/python $(BIN)/python -m pytest

test: test-sqlite test-postgresql

test-sqlite: $(BIN)/.test-plugins $(SDK_VENV)/bin/.installed $(ACTUAL)/node_modules/.installed
	$(PYTEST) $(PYTEST_ARGS)

test-postgresql: $(BIN)/.test-plugins $(SDK_VENV)/bin/.installed $(ACTUAL)/node_modules/.installed
	OPENAGG_TEST_BACKEND=postgresql $(PYTEST) $(PYTEST_ARGS)

# lint-imports: the layers import downward only ([tool.importlinter] in pyproject.toml).
lint: $(BIN)/.installed
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports

# Schemathesis from the server's /openapi.json, longer than the suite's short run (which
# `make test` includes): OPENAGG_FUZZ_EXAMPLES per operation, then fuzzing until
# OPENAGG_FUZZ_SECONDS are spent.
fuzz: $(BIN)/.test-plugins
	OPENAGG_FUZZ_EXAMPLES=$${OPENAGG_FUZZ_EXAMPLES:-100} OPENAGG_FUZZ_SECONDS=$${OPENAGG_FUZZ_SECONDS:-600} \
		$(BIN)/python -m pytest -q tests/integration/test_openapi_fuzz.py

bench: $(BIN)/.installed
	$(BIN)/python -m bench.run_all

clean:
	rm -rf $(VENV) $(SDK_VENV) $(ACTUAL)/node_modules .openagg .pytest_cache .mypy_cache .ruff_cache .import_linter_cache .grimp_cache
