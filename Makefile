# One command surface for developers and CI: `make run` and `make test` set everything up.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: run test lint unit bench dashboards alerts system-deps lock image-test console-screenshot clean

## The virtualenv: exactly the locked versions (hash-checked), then voicecall itself, editable.
$(STAMP): pyproject.toml requirements/dev.txt
	$(PYTHON) -m venv --clear $(VENV)  # nothing left over from an older lock
	$(BIN)/python -m pip install -q --require-hashes -r requirements/dev.txt
	$(BIN)/python -m pip install -q --no-deps -e .
	touch $(STAMP)

## Regenerate requirements/*.txt from pyproject.toml (UPGRADE=1: newest allowed versions).
lock: $(STAMP)
	./scripts/lock.sh

system-deps:
	./scripts/install-system-deps.sh

## The demo: private Redis, the eSMS simulator, the API and a worker; a few jobs of each kind,
## then the stack keeps running (console, /docs; URLs and token printed) until Ctrl-C.
run: $(STAMP)
	SKIP_PROMETHEUS=1 SKIP_CHROMIUM=1 ./scripts/install-system-deps.sh
	$(BIN)/voicecall demo --serve

## Lint, type-check, then the whole suite (it starts its own redis-server on a free port).
test: $(STAMP) system-deps lint
	$(BIN)/pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/mypy scripts/image_test.py
	$(BIN)/mypy --strict examples/  # the client's examples, as a user's program

unit: $(STAMP)
	$(BIN)/pytest -m "not slow and not prometheus"

bench: $(STAMP) system-deps
	$(BIN)/python -m bench.run $(if $(QUICK),--quick,)

## Build the Dockerfile and run the image (Docker, else buildah/podman): api, worker and the
## simulator against a Redis, HEALTHCHECK and uid checked, one call of each kind completed.
image-test:
	SKIP_PROMETHEUS=1 SKIP_CHROMIUM=1 ./scripts/install-system-deps.sh
	$(PYTHON) scripts/image_test.py

## Regenerate the Grafana dashboards JSON from deploy/grafana/dashboards.py.
dashboards: $(STAMP)
	$(BIN)/python deploy/grafana/dashboards.py

## Alert rules with runbook links under RUNBOOK_BASE_URL (default: the repository's runbook).
ALERTS_OUT ?= build/prometheus/alerts.yml
alerts:
	RUNBOOK_BASE_URL='$(RUNBOOK_BASE_URL)' $(PYTHON) deploy/prometheus/runbook_links.py --out $(ALERTS_OUT)

## docs/console.png, the README's screenshot: the demo stack, logged in, in Debian's chromium.
console-screenshot: $(STAMP) system-deps
	$(BIN)/python scripts/console_screenshot.py docs/console.png

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
