# One command surface for developers and CI: `make run` and `make test` set everything up.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: run test lint unit bench dashboards alerts system-deps clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $(STAMP)

system-deps:
	./scripts/install-system-deps.sh

## The demo: private Redis, the eSMS simulator, the API and a worker; a few jobs of each kind.
run: $(STAMP)
	SKIP_PROMETHEUS=1 ./scripts/install-system-deps.sh
	$(BIN)/voicecall demo

## Lint, type-check, then the whole suite (it starts its own redis-server on a free port).
test: $(STAMP) system-deps lint
	$(BIN)/pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/pytest -m "not slow and not prometheus"

bench: $(STAMP) system-deps
	$(BIN)/python -m bench.run $(if $(QUICK),--quick,)

## Regenerate the Grafana dashboards JSON from deploy/grafana/dashboards.py.
dashboards: $(STAMP)
	$(BIN)/python deploy/grafana/dashboards.py

## Alert rules with runbook links under RUNBOOK_BASE_URL (default: the repository's runbook).
ALERTS_OUT ?= build/prometheus/alerts.yml
alerts:
	RUNBOOK_BASE_URL='$(RUNBOOK_BASE_URL)' $(PYTHON) deploy/prometheus/runbook_links.py --out $(ALERTS_OUT)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
