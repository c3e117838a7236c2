# One command each: `make test` (everything CI runs) and `make dev` (the local API).
# Both set up their own virtualenv and Python deps; `make test` adds Node tools (DynamoDB
# Local) and Java, `make dev` needs neither (its DynamoDB is moto, in process).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PORT ?= 3000
PIP := $(PY) -m pip install -q --disable-pip-version-check

.PHONY: test deps lint fmt clean dev

# Runtime + emulator deps, and `pip install -e .` for the `apikeys-local` console script
# (it makes infra/apikeys_local and layers/shared/apikeys importable from the venv).
$(VENV)/.local: requirements.txt requirements-local.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) -r requirements-local.txt
	$(PIP) --no-deps -e .
	touch $@

$(VENV)/.deps: $(VENV)/.local requirements-dev.txt
	$(PIP) -r requirements-dev.txt
	touch $@

# The API at http://127.0.0.1:$(PORT) on an embedded DynamoDB; prints a quickstart.
dev: $(VENV)/.local
	$(VENV)/bin/apikeys-local serve --port $(PORT)

node_modules/.deps: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

deps: $(VENV)/.deps node_modules/.deps
	scripts/ensure-java.sh
	scripts/ensure-chromium.sh

lint: $(VENV)/.deps
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

fmt: $(VENV)/.deps
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

# pytest exits 5 when it collected no test: that is a broken suite, not a pass.
test: deps lint
	$(PY) -m pytest; rc=$$?; if [ $$rc -eq 5 ]; then echo "pytest collected no tests" >&2; exit 1; fi; exit $$rc

clean:
	rm -rf $(VENV) node_modules .pytest_cache .apikeys-local
