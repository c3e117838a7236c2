# One command each: `make test` (everything CI runs), `make unit` (the fast tier) and `make dev`
# (the local API). Each sets up its own virtualenv and Python deps; `make test` adds Node tools
# (DynamoDB Local), Java and Chromium, `make unit` and `make dev` need none of them.
# `make` alone prints `make help`: every target with its `## ` line.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PORT ?= 3000
PIP := $(PY) -m pip install -q --disable-pip-version-check

.DEFAULT_GOAL := help
.PHONY: help test unit contract local stress deps lint scan fmt clean dev bench mutation

# pytest exits 5 when it collected no test: that is a broken suite, not a pass.
PYTEST = $(PY) -m pytest $(1); rc=$$?; if [ $$rc -eq 5 ]; then echo "pytest collected no tests" >&2; exit 1; fi; exit $$rc

help: ## List every target (a bare `make` prints this)
	@awk 'BEGIN {FS = ":[^#]*## "} /^[a-z][a-z-]*:.*## / {printf "  make %-9s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

# Runtime + emulator deps, and `pip install -e .` for the `apikeys-local` console script
# (it makes infra/apikeys_local and layers/shared/apikeys importable from the venv).
$(VENV)/.local: requirements.txt requirements-local.txt functions/mcp/requirements.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) -r requirements-local.txt
	$(PIP) --no-deps -e .
	touch $@

$(VENV)/.deps: $(VENV)/.local requirements-dev.txt requirements-sam.txt
	$(PIP) -r requirements-dev.txt
	$(PIP) --no-deps -r requirements-sam.txt
	touch $@

# The API at http://127.0.0.1:$(PORT) on an embedded DynamoDB; prints a quickstart.
dev: $(VENV)/.local ## Serve the API locally on port PORT (default 3000); no Java, no Node
	$(VENV)/bin/apikeys-local serve --port $(PORT)

# checkov pins an older boto3 than the runtime, so it gets a virtualenv of its own.
.venv-checkov/.deps: requirements-checkov.txt
	test -x .venv-checkov/bin/python || $(PYTHON) -m venv .venv-checkov
	.venv-checkov/bin/python -m pip install -q --disable-pip-version-check -r requirements-checkov.txt
	touch $@

node_modules/.deps: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

deps: $(VENV)/.deps node_modules/.deps ## Install Python and Node deps, Java and Chromium (every tier but unit needs them)
	scripts/ensure-java.sh
	scripts/ensure-chromium.sh

lint: $(VENV)/.deps ## ruff lint and format check
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

# Security and type scanners; each prints its verdict so the test output records it.
# checkov runs offline (--skip-download); every finding is fixed or skipped in template.yaml with a reason.
scan: $(VENV)/.deps .venv-checkov/.deps ## mypy --strict, bandit, checkov and cfn-lint
	@echo "== mypy --strict (layers/shared/apikeys, functions, infra/apikeys_local, bench)" && $(VENV)/bin/mypy
	@echo "== bandit (layers, functions)" && $(VENV)/bin/bandit -q -c pyproject.toml -r layers functions && echo "bandit: no issues"
	@echo "== checkov (template.yaml)" && .venv-checkov/bin/checkov -f template.yaml --framework cloudformation \
		--skip-download --compact --quiet | sed -n '/Passed checks/p;/FAILED/,$$p'; exit $${PIPESTATUS[0]}
	@echo "== cfn-lint (template.yaml)" && $(VENV)/bin/cfn-lint template.yaml && echo "cfn-lint: no errors, no warnings"

fmt: $(VENV)/.deps ## ruff format and autofix
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

# Two pytest-xdist workers, a test file each at a time (`loadfile`): a module's one server or
# browser stays shared by its tests, and the suite's waits (a real grace period, servers
# starting) overlap with the other worker's work.
test: deps lint scan ## Everything CI runs (`.ci/run`): lint, scanners and every test tier
	$(call PYTEST,-n 2 --dist loadfile)

# Test tiers (tests/<tier>/, marked by tests/conftest.py). Only `unit` skips `deps`: it needs no
# Java, npm or Chromium, and includes the moto run of the contract suite.
unit: $(VENV)/.deps ## Fast tier, under a minute: in process on moto, no Java, npm or Chromium
	$(call PYTEST,-m unit -n 2)

contract: deps ## The API's contract suite on moto and on DynamoDB Local
	$(call PYTEST,-m contract)

local: deps ## The local server over HTTP, its CLI, and the console in Chromium
	$(call PYTEST,-m local)

stress: deps ## Races, storm, injected faults, fuzzing and the bench smoke run
	$(call PYTEST,-m stress)

# Starts DynamoDB Local, seeds it, prints the side-by-side table and writes it as JSON
# (docs/performance.md). BENCH_ARGS="--smoke" for a quick check of the harness.
bench: deps ## Benchmark on DynamoDB Local (BENCH_ARGS="--smoke" for a quick check)
	$(PY) -m bench.run $(BENCH_ARGS)

# Not part of `make test`: about an hour on one core (docs/testing.md records scores and times).
mutation: $(VENV)/.deps ## mutmut on keys, auth, plans, logic, store, scanning, scopes, fn_authorizer, fn_mcp vs the fast tier (MODULES="keys" narrows, WORKERS=2)
	scripts/mutation.sh

clean: ## Remove the virtualenvs, node_modules and local state
	rm -rf $(VENV) .venv-checkov node_modules .pytest_cache .apikeys-local .mutation .mutation-results.txt
