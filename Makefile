# One command each: `make test` (everything CI runs) and `make dev` (the local API).
# Both set up their own virtualenv and Python deps; `make test` adds Node tools (DynamoDB
# Local) and Java, `make dev` needs neither (its DynamoDB is moto, in process).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PORT ?= 3000
PIP := $(PY) -m pip install -q --disable-pip-version-check

.PHONY: test deps lint scan fmt clean dev bench

# Runtime + emulator deps, and `pip install -e .` for the `apikeys-local` console script
# (it makes infra/apikeys_local and layers/shared/apikeys importable from the venv).
$(VENV)/.local: requirements.txt requirements-local.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) -r requirements-local.txt
	$(PIP) --no-deps -e .
	touch $@

$(VENV)/.deps: $(VENV)/.local requirements-dev.txt requirements-sam.txt
	$(PIP) -r requirements-dev.txt
	$(PIP) --no-deps -r requirements-sam.txt
	touch $@

# The API at http://127.0.0.1:$(PORT) on an embedded DynamoDB; prints a quickstart.
dev: $(VENV)/.local
	$(VENV)/bin/apikeys-local serve --port $(PORT)

# checkov pins an older boto3 than the runtime, so it gets a virtualenv of its own.
.venv-checkov/.deps: requirements-checkov.txt
	test -x .venv-checkov/bin/python || $(PYTHON) -m venv .venv-checkov
	.venv-checkov/bin/python -m pip install -q --disable-pip-version-check -r requirements-checkov.txt
	touch $@

node_modules/.deps: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

deps: $(VENV)/.deps node_modules/.deps
	scripts/ensure-java.sh
	scripts/ensure-chromium.sh

lint: $(VENV)/.deps
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

# Security and type scanners; each prints its verdict so the test output records it.
# checkov runs offline (--skip-download); every finding is fixed or skipped in template.yaml with a reason.
scan: $(VENV)/.deps .venv-checkov/.deps
	@echo "== mypy --strict (layers/shared/apikeys)" && $(VENV)/bin/mypy
	@echo "== bandit (layers, functions)" && $(VENV)/bin/bandit -q -c pyproject.toml -r layers functions && echo "bandit: no issues"
	@echo "== checkov (template.yaml)" && .venv-checkov/bin/checkov -f template.yaml --framework cloudformation \
		--skip-download --compact --quiet | sed -n '/Passed checks/p;/FAILED/,$$p'; exit $${PIPESTATUS[0]}
	@echo "== cfn-lint (template.yaml)" && $(VENV)/bin/cfn-lint template.yaml && echo "cfn-lint: no errors, no warnings"

fmt: $(VENV)/.deps
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

# pytest exits 5 when it collected no test: that is a broken suite, not a pass.
test: deps lint scan
	$(PY) -m pytest; rc=$$?; if [ $$rc -eq 5 ]; then echo "pytest collected no tests" >&2; exit 1; fi; exit $$rc

# Starts DynamoDB Local, seeds it, prints the side-by-side table and writes it as JSON
# (docs/performance.md). BENCH_ARGS="--smoke" for a quick check of the harness.
bench: deps
	$(PY) -m bench.run $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .venv-checkov node_modules .pytest_cache .apikeys-local
