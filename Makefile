# Two commands for a new user: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
CONFIG ?= config.example.toml
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: run test test-quick install install-test install-system system-deps hubspot-tooling lint lint-checks bench soak clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

## The development install (editable, into .venv) that `make run` uses.
install: $(BIN)/python
	$(BIN)/pip install -q -e .

install-test: $(BIN)/python
	$(BIN)/pip install -q -e '.[test]'

## A production install (root, Debian 12/13): venv in /opt/mail-gateway, the unit, the
## service user, /etc/mail-gateway/config.toml; DESTDIR= and PREFIX= for packaging.
install-system:
	sh scripts/install.sh

## Start the daemon on the example config (SQLite + built-in HubSpot sandbox, local ports).
run: install
	@echo
	@echo "mail-gateway on $(CONFIG): SMTP 127.0.0.1:2525, HTTP http://127.0.0.1:8025/healthz,"
	@echo "rep console (the built-in HubSpot sandbox) http://127.0.0.1:8026/console/"
	@echo "Try, in another terminal:"
	@echo "  swaks --server 127.0.0.1:2525 --to support@example.com --from you@customer.test \\"
	@echo "        --header 'Subject: Password' --body 'How do I reset my password? I forgot it.'"
	@echo "  swaks --server 127.0.0.1:2525 --to support@example.com --from bob@customer.test \\"
	@echo "        --header 'Subject: Refund' --body 'I want a refund, this is the third time!'"
	@echo "  $(BIN)/mail-gateway --config $(CONFIG) sessions list    # then: outbox list"
	@echo "Ctrl-C stops it."
	@echo
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
