# ElexirionDSP — the two commands: `make run` and `make test`.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
BUN := .tools/node_modules/.bin/bun
BUN_VERSION := 1.4.4
SWAGGER_UI := .tools/node_modules/swagger-ui-dist/swagger-ui-bundle.js
SWAGGER_UI_VERSION := 5.35.0
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

export REFLEX_CHECK_LATEST_VERSION := false
export LITELLM_LOCAL_MODEL_COST_MAP := True
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: run test lint typecheck unit browser migrate deps bun apidocs chromium clean

# pytest on one directory. Exit code 5 ("no tests collected") stays a failure, named as such:
# every directory we run has tests, so collecting none means they were lost.
define pytest_in
$(BIN)/pytest $(1) || { rc=$$?; [ $$rc -ne 5 ] || echo "pytest collected no tests in $(1) (exit 5): tests were lost; failing" >&2; exit $$rc; }
endef

## run: install everything missing, migrate the database, serve http://localhost:3000
run: deps bun apidocs migrate
	$(BIN)/reflex run --env prod --single-port

## test: lint, type-check, unit tests, the security suite against the served app (websocket and
## HTTP clients), and browser tests (installs Chromium from apt if missing)
# Unit and browser tests run in separate processes: Playwright's sync API keeps an event loop
# running in the main thread, which the asyncio tests cannot share.
test: deps bun apidocs chromium lint typecheck
	$(call pytest_in,tests/unit)
	$(call pytest_in,tests/security)
	$(call pytest_in,tests/integration)

lint: deps
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: deps
	$(BIN)/mypy elexirion_app

unit: deps
	$(call pytest_in,tests/unit)

browser: deps bun apidocs chromium
	$(call pytest_in,tests/integration)

deps: $(VENV)/.installed

$(VENV)/.installed: requirements.txt
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -r requirements.txt
	@touch $@

bun: $(BUN)

## apidocs: Swagger UI's files for /api/docs, from npm (served from our origin, never a CDN)
apidocs: $(SWAGGER_UI)

$(SWAGGER_UI):
	npm install --prefix .tools --no-audit --no-fund --loglevel=error swagger-ui-dist@$(SWAGGER_UI_VERSION)

$(BUN):
	npm install --prefix .tools --no-audit --no-fund --loglevel=error bun@$(BUN_VERSION)
	@$(BUN) --version >/dev/null

chromium:
	@command -v chromium >/dev/null || { $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq chromium >/dev/null; }

migrate: deps
	@mkdir -p data
	$(BIN)/alembic upgrade head

clean:
	rm -rf .web .states data test-results screenshots
