# acr-retag developer commands. Every target bootstraps .venv from nothing.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
CHECKOV_VENV ?= .venv-checkov
CHECKOV_STAMP := $(CHECKOV_VENV)/.installed
JS_DIR := tests/js
JS_STAMP := $(JS_DIR)/node_modules/.installed
# Pinned Go peers (OCI conformance suite, crane); the pins live in tests/support/gotools.py.
GO_TOOLS_STAMP := .cache/go-tools/.built
EVENT ?= samples/events/image-pushed-latest.json
FUNC_URL ?= http://localhost:7071

.PHONY: help venv checkov-venv js-deps go-tools lint fmt test demo send-event run-timer bench soak emulator clean

help:
	@echo "make demo        run the main job against the local ACR emulator (no Azure needed)"
	@echo "make test        lint (ruff, mypy) + the whole test suite"
	@echo "make lint        ruff check, ruff format --check, mypy --strict"
	@echo "make fmt         apply ruff format and safe fixes"
	@echo "make emulator    serve the ACR + Event Grid emulator in the foreground"
	@echo "make send-event  POST EVENT=<file> to a running 'func start' (on_image_pushed)"
	@echo "make bench       run benchmarks/ and regenerate docs/benchmarks.md"
	@echo "make soak        the fault soak at full size"

$(STAMP): requirements.txt requirements-dev.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	@touch $(STAMP)

venv: $(STAMP)

# checkov pins its own pycep-parser, so it gets a venv of its own (used by tests/infra).
$(CHECKOV_STAMP): requirements-checkov.txt
	@test -x $(CHECKOV_VENV)/bin/python || $(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install --quiet -r requirements-checkov.txt
	@touch $(CHECKOV_STAMP)

checkov-venv: $(CHECKOV_STAMP)

# The JavaScript SDK suite (tests/js): npm ci from the committed lockfile. Without npm the
# tests skip with the reason (CI sets RETAG_REQUIRE_SYSTEM_DEPS=1, which turns that into a failure).
$(JS_STAMP): $(JS_DIR)/package.json $(JS_DIR)/package-lock.json
	@if command -v npm >/dev/null; then \
	  cd $(JS_DIR) && npm ci --no-audit --no-fund --loglevel=error && touch node_modules/.installed; \
	else echo "npm not found: tests/js will be skipped"; fi

js-deps: $(JS_STAMP)

# Built once into .cache/go-tools/<name>@<version>/ (reused after); without `go` this prints why
# and leaves no stamp, and the Go peer tests skip (or fail under RETAG_REQUIRE_SYSTEM_DEPS=1).
$(GO_TOOLS_STAMP): tests/support/gotools.py | $(STAMP)
	$(PY) -m tests.support.gotools --stamp $@

go-tools: $(GO_TOOLS_STAMP)

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy

fmt: $(STAMP)
	$(PY) -m ruff format .
	$(PY) -m ruff check --fix .

test: lint $(CHECKOV_STAMP) $(JS_STAMP) $(GO_TOOLS_STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

demo: $(STAMP)
	$(PY) -m emulator demo

# The emulator for `func start` and the CLI: state and CA in .cache/emulator (see
# local.settings.json.example). SUBSCRIBER=<webhook URL> delivers every push as Event Grid would.
emulator: $(STAMP)
	$(PY) -m emulator serve --port 5443 --data .cache/emulator $(if $(SUBSCRIBER),--subscriber '$(SUBSCRIBER)')

send-event:
	curl -sS -X POST "$(FUNC_URL)/runtime/webhooks/EventGrid?functionName=on_image_pushed" \
	  -H 'Content-Type: application/json' -H 'aeg-event-type: Notification' \
	  --data-binary @$(EVENT) -w '\nHTTP %{http_code}\n'

run-timer:
	curl -sS -X POST "$(FUNC_URL)/admin/functions/$(NAME)" \
	  -H 'Content-Type: application/json' --data '{"input": ""}' -w '\nHTTP %{http_code}\n'

bench: $(STAMP)
	$(PY) -m benchmarks

soak: $(STAMP)
	RETAG_SOAK_SIZE=full $(PY) -m pytest tests/soak -q -s

clean:
	rm -rf $(VENV) $(CHECKOV_VENV) $(JS_DIR)/node_modules .mypy_cache .ruff_cache .pytest_cache .hypothesis .cache
