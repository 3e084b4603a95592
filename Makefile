# Every chore is one command; CI calls the same ones (.ci/run).
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: prerequisites install dev test lint format bench

# What the machine must have (README.md, Prerequisites), checked in about a second before anything
# installs or starts: one line per missing tool with the command that installs it. What is
# checked depends on the goal: `dev` and `test` need more than `install`.
NEEDS = install
dev: NEEDS = dev
test: NEEDS = test
prerequisites:
	@$(PYTHON) -m deploy.local.prerequisites $(NEEDS) --venv $(VENV)

$(STAMP): pyproject.toml | prerequisites
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

NODE_STAMP := node_modules/.installed

$(NODE_STAMP): package.json package-lock.json | prerequisites
	npm ci --no-audit --no-fund
	touch $(NODE_STAMP)

# The page's bundle (Firebase JS SDK + web/src), served by the API at /.
web/public/app.js: $(NODE_STAMP) $(wildcard web/src/*.js)
	npm run --silent build

install: prerequisites $(STAMP) web/public/app.js

## The local stack (emulators, API on :8000, processor on :8001) in the foreground;
## `make dev PROCESSORS=2` runs two processor processes behind the push endpoint.
PROCESSORS ?= 1
dev: install
	$(BIN)/longrun dev --processors $(PROCESSORS)

## The whole suite, against Google's real emulators (started by the fixtures).
test: install
	$(BIN)/pytest

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

## Every benchmark, written to benchmarks/results.md (takes a while; see benchmarks/).
bench: install
	$(BIN)/python -m benchmarks
