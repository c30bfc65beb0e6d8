# One entry point for people and CI. Every target creates what it needs.
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PORT ?= 8000
RECIPE ?= house-price
ARTIFACTS ?= artifacts
STACK ?= dev
PROFILE ?= local
URL ?= http://127.0.0.1:$(PORT)
PYTEST_ARGS ?=

.PHONY: help venv train up down test lint typecheck unit faults manifests loadtest bench clean v2

help: ## List targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade uv
	$(VENV)/bin/uv pip install -q --python $(PY) -e '.[dev]'
	touch $@

venv: $(VENV)/.installed ## Create the virtualenv and install everything

train: venv ## Train RECIPE (default house-price) into ARTIFACTS/
	$(PY) -m model train --recipe $(RECIPE) --out $(ARTIFACTS)

up: venv ## Train the default model if none exists, start embedded Postgres, serve on 127.0.0.1:$(PORT)
	$(PY) -m service up --recipe $(RECIPE) --artifacts $(ARTIFACTS) --port $(PORT)

down: venv ## Stop the embedded Postgres started by `make up`
	$(PY) -m service db-stop

lint: venv ## ruff, bandit, hadolint, workflow schema and shellcheck
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check model service pipelines
	$(VENV)/bin/bandit -q -r service model pipelines -c pyproject.toml
	$(VENV)/bin/hadolint Dockerfile

typecheck: venv ## mypy --strict on model, service, pipelines
	$(VENV)/bin/mypy

test: venv lint typecheck ## The whole suite: lint, types, unit, integration, e2e, fault drills
	$(PY) -m pytest $(PYTEST_ARGS)

faults: venv ## Only the fault drills
	$(PY) -m pytest -m faults tests/faults $(PYTEST_ARGS)

manifests: venv ## Render the Kubernetes objects of STACK (dev|staging|prod) to manifests/STACK/
	$(PY) -m infra.render --stack $(STACK) --out manifests/$(STACK)

loadtest: venv ## Locust SLO gate: make loadtest URL=http://... PROFILE=local
	$(PY) -m loadtest --url $(URL) --profile $(PROFILE) --out reports/loadtest

bench: venv ## Side-by-side benchmark of the service against baselines
	$(PY) -m loadtest.bench --out reports/bench $(if $(PEERS),--peers $(PEERS))

clean: ## Remove generated files (keeps the virtualenv)
	rm -rf reports manifests .pytest_cache .mypy_cache .ruff_cache

v2: venv ## Only the Open Inference Protocol v2 tests with real clients (tritonclient, kserve's own venv)
	$(PY) -m pytest -m v2 tests/service/test_v2_clients.py $(PYTEST_ARGS)
