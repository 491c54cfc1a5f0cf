# ElexirionDSP — the two commands: `make run` and `make test`.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
BUN := .tools/node_modules/.bin/bun
BUN_VERSION := 1.4.4
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

export REFLEX_CHECK_LATEST_VERSION := false
export LITELLM_LOCAL_MODEL_COST_MAP := True
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: run test lint typecheck unit browser migrate deps bun chromium clean

# pytest on one directory. Exit code 5 ("no tests collected") stays a failure, named as such:
# every directory we run has tests, so collecting none means they were lost.
define pytest_in
$(BIN)/pytest $(1) || { rc=$$?; [ $$rc -ne 5 ] || echo "pytest collected no tests in $(1) (exit 5): tests were lost; failing" >&2; exit $$rc; }
endef

## run: install everything missing, migrate the database, serve http://localhost:3000
run: deps bun migrate
	$(BIN)/reflex run --env prod --single-port

## test: lint, type-check, unit tests, the security suite against the served app (websocket and
## HTTP clients), and browser tests (installs Chromium from apt if missing)
# Unit and browser tests run in separate processes: Playwright's sync API keeps an event loop
# running in the main thread, which the asyncio tests cannot share.
test: deps bun chromium lint typecheck
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

browser: deps bun chromium
	$(call pytest_in,tests/integration)

deps: $(VENV)/.installed

$(VENV)/.installed: requirements.txt
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -r requirements.txt
	@touch $@

bun: $(BUN)

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
