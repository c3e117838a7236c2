# One command each: `make test` (everything CI runs) and, later, `make dev`.
# Both set up their own virtualenv, Python deps, Node tools (DynamoDB Local) and Java.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: test deps lint fmt clean bench

$(VENV)/.deps: requirements.txt requirements-dev.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -r requirements-dev.txt
	touch $@

node_modules/.deps: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

deps: $(VENV)/.deps node_modules/.deps
	scripts/ensure-java.sh

lint: $(VENV)/.deps
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

fmt: $(VENV)/.deps
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

# pytest exits 5 when it collected no test: that is a broken suite, not a pass.
test: deps lint
	$(PY) -m pytest; rc=$$?; if [ $$rc -eq 5 ]; then echo "pytest collected no tests" >&2; exit 1; fi; exit $$rc

# Starts DynamoDB Local, seeds it, prints the side-by-side table and writes it as JSON
# (docs/performance.md). BENCH_ARGS="--smoke" for a quick check of the harness.
bench: deps
	$(PY) -m bench.run $(BENCH_ARGS)

clean:
	rm -rf $(VENV) node_modules .pytest_cache
