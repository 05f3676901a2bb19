# Two commands for a new user: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
CONFIG ?= config.example.toml

.PHONY: run test test-quick install install-test system-deps hubspot-tooling lint lint-checks bench soak clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

install: $(BIN)/python
	$(BIN)/pip install -q -e .

install-test: $(BIN)/python
	$(BIN)/pip install -q -e '.[test]'

## Start the daemon on the example config (SQLite + built-in HubSpot sandbox, local ports).
run: install
	$(BIN)/mail-gateway --config $(CONFIG) serve

## System packages the tests drive (swaks, Postfix, Dovecot, chromium); needs root on Debian.
system-deps:
	bash scripts/install-system-deps.sh

## HubSpot's own project parser (npm), to validate hubspot-app/ offline; git ignores it.
hubspot-tooling:
	npm ci --prefix hubspot-app/tooling --no-audit --no-fund --loglevel=error

## Everything the tests need, then lint and the whole suite.
test: install-test system-deps hubspot-tooling
	$(MAKE) --no-print-directory lint-checks
	$(BIN)/python -m pytest -q

## The suite without the tests marked slow (crash campaigns, fault injection, full corpora).
test-quick: install-test
	$(BIN)/python -m pytest -q -m "not slow"

## Style, the one-way import rule (docs/ARCHITECTURE.md) and type hints.
lint: install-test
	$(MAKE) --no-print-directory lint-checks

lint-checks:
	$(BIN)/ruff check gateway tests bench
	$(BIN)/lint-imports --no-cache
	$(BIN)/mypy

## Every benchmark against its baseline, same run: Markdown tables + bench/results/*.json.
bench: install-test system-deps
	$(BIN)/python bench/run_all.py

## The reliability campaign at full length (SIGKILLs, HubSpot faults, failing relay).
SOAK_SECONDS ?= 300
soak: install-test
	$(BIN)/python bench/soak.py --duration $(SOAK_SECONDS) --kills 12

clean:
	rm -rf $(VENV) state .pytest_cache
