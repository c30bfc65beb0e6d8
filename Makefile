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
PROM_PORT ?= 9090

.PHONY: help venv train up down test lint typecheck unit faults manifests loadtest bench clean scan prometheus monitor monitoring v2
.PHONY: docker-engine container-test lock lock-check image compose-up compose-down test-all

help: ## List targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

# Installs exactly what uv.lock pins (runtime + the dev extra); a pyproject.toml the lock does not match
# stops here with the one command that fixes it. uv itself is pinned too; --inexact keeps pip and uv.
UV_VERSION ?= 0.13.9
UV := $(VENV)/bin/uv
$(VENV)/.installed: pyproject.toml uv.lock
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q uv==$(UV_VERSION)
	$(UV) lock --check -q || { echo "uv.lock does not match pyproject.toml: run \`make lock\` and commit uv.lock" >&2; exit 1; }
	UV_PROJECT_ENVIRONMENT=$(VENV) $(UV) sync -q --frozen --inexact --extra dev
	touch $@

venv: $(VENV)/.installed ## Create .venv and install exactly what uv.lock pins (runtime and the dev extra)

train: venv ## Train RECIPE (default house-price) into ARTIFACTS/
	$(PY) -m model train --recipe $(RECIPE) --out $(ARTIFACTS)

up: venv ## Serve the newest RECIPE artifact (trained if none) on 127.0.0.1:PORT (8000); embedded Postgres unless DATABASE_URL
	$(PY) -m pipelines.devtools up --recipe $(RECIPE) --artifacts $(ARTIFACTS) --port $(PORT)

down: venv ## Stop what `make up` started: the service, then its embedded Postgres
	$(PY) -m pipelines.devtools down

lint: venv ## ruff check, ruff format --check, bandit, hadolint
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check model service pipelines
	$(VENV)/bin/bandit -q -r service model pipelines -c pyproject.toml
	$(VENV)/bin/hadolint Dockerfile

typecheck: venv ## mypy --strict on model, service, pipelines, infra
	$(VENV)/bin/mypy

# The heavy groups have their own targets and stay out of `make test` so it fits in 20 minutes on 2 cores:
# `make rehearse` (the workflows end to end under act, about 15 min idle) and `make container-test` (image builds,
# about 9 min, plus 5 min for the stand-in bases once per machine). `make test-all` runs everything.
HEAVY := rehearsal or container
test: venv lock-check prometheus wrk haproxy lint typecheck scan ## lock check, lint, types, scan, then every test but the rehearsal and container ones
	$(PY) -m pytest -m "not ($(HEAVY))" $(PYTEST_ARGS)

# The fast loop (under 2 minutes): every test that needs no service. Out: the marked groups, the tests that
# tests/conftest.py marks needs_db (they ask for a real PostgreSQL), and needs_engine (promtool, act, wrk, an
# update through the stand-in Pulumi CLI). No Postgres, uvicorn, Prometheus, Docker or act is started.
UNIT := not (slow or faults or e2e or rehearsal or monitoring or container or v2 or needs_db or needs_engine)
unit: venv ## The fast loop: the tests that need no Postgres, uvicorn, Prometheus, Docker or act
	$(PY) -m pytest -m "$(UNIT)" $(PYTEST_ARGS)

test-all: test rehearse container-test ## make test, then make rehearse and make container-test

faults: venv ## Only the fault drills
	$(PY) -m pytest -m faults tests/faults $(PYTEST_ARGS)

manifests: venv ## Render the Kubernetes objects of STACK (dev|staging|prod) to manifests/STACK/
	$(PY) -m infra.render --stack $(STACK) --out manifests/$(STACK)

loadtest: venv ## Locust SLO gate: make loadtest URL=http://... PROFILE=local
	$(PY) -m loadtest --url $(URL) --profile $(PROFILE) --out reports/loadtest

bench: venv wrk ## Side-by-side benchmark against baselines (PEERS=kserve,mlserver adds the peers)
	$(PY) -m loadtest.bench --out reports/bench $(if $(PEERS),--peers $(PEERS))

clean: ## Remove generated files (keeps the virtualenv)
	rm -rf reports manifests .pytest_cache .mypy_cache .ruff_cache

.PHONY: rehearse
rehearse: venv haproxy prometheus ## tests/rehearsal and tests/workflows: the workflows under nektos/act, stand-in actions and Pulumi CLI (HAProxy: its Services; Prometheus: prod canary)
	$(PY) -m pytest tests/rehearsal tests/workflows $(PYTEST_ARGS)

# checkov offline (--skip-download: no Prisma Cloud guidelines or policies). Every skip is written where the
# object is declared (checkov.io/skipN annotations, #checkov:skip= comments), never on a command line here.
SCAN_DIR ?= reports/scan
SCAN_STACKS := $(patsubst Pulumi.%.yaml,%,$(wildcard Pulumi.*.yaml))
CHECKOV := $(VENV)/bin/checkov --quiet --compact --skip-download
scan: venv ## checkov on the rendered manifests of every stack, the Dockerfile and the workflows (skips are inline)
	rm -rf $(SCAN_DIR)
	for stack in $(SCAN_STACKS); do $(PY) -m infra.render --stack $$stack --out $(SCAN_DIR)/$$stack; done
	$(CHECKOV) --framework kubernetes -d $(SCAN_DIR)
	$(CHECKOV) --framework github_actions -d .github/workflows
	$(CHECKOV) --framework dockerfile -f Dockerfile
prometheus: ## Install Debian's prometheus (server and promtool) if missing; idempotent
	@command -v promtool >/dev/null && command -v prometheus >/dev/null || \
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus; }

monitor: venv prometheus ## Real Prometheus on 127.0.0.1:PROM_PORT (9090) scraping 127.0.0.1:PORT (8000) with the stacks' rules
	$(PY) -m pipelines.devtools.monitor --target 127.0.0.1:$(PORT) --port $(PROM_PORT)

monitoring: venv prometheus ## tests/monitoring: promtool rules, dashboard PromQL, CRD schemas, live alert drill
	$(PY) -m pytest tests/monitoring $(PYTEST_ARGS)
# ---- container: the serving image built and run on a real Docker engine ----------------------------
docker-engine: ## Install Debian's docker.io/docker-compose/debootstrap if missing; start dockerd if none answers
	bash tests/container/engine.sh

# A client that does BuildKit: a newer docker CLI without the buildx plugin refuses; Debian's 20.10 does it.
DOCKER ?= $(shell docker buildx version >/dev/null 2>&1 && echo docker || echo /usr/bin/docker)
IMAGE ?= modelship:local
MODEL_DIR ?= $(firstword $(shell ls -td $(ARTIFACTS)/$(RECIPE)-* 2>/dev/null))
# The machine's CA bundle as a BuildKit secret: pip trusts a TLS-intercepting proxy it knows; never in a layer.
CA_BUNDLE ?= $(wildcard /etc/ssl/certs/ca-certificates.crt)
BUILD_FLAGS ?=
comma := ,

image: venv docker-engine ## Build the serving image of MODEL_DIR (default: newest RECIPE artifact) as IMAGE
	@test -n "$(MODEL_DIR)" || { echo "no artifact: run \`make train\` or pass MODEL_DIR=artifacts/<version>" >&2; exit 1; }
	DOCKER_BUILDKIT=1 $(DOCKER) build $$($(PY) -W ignore::RuntimeWarning -m infra.components.image $(MODEL_DIR)) \
		$(if $(CA_BUNDLE),--secret id=ca_bundle$(comma)src=$(CA_BUNDLE)) $(BUILD_FLAGS) -t $(IMAGE) .

COMPOSE ?= $(shell docker compose version >/dev/null 2>&1 && echo "docker compose" || echo docker-compose)
# The image is built by `make image` (BuildKit, secrets); compose then runs it with the manifest's values.
compose-up: image ## Build, then run the service and Postgres with docker-compose (stop: make compose-down)
	export $$($(PY) -W ignore::RuntimeWarning -m infra.components.image $(MODEL_DIR) | sed 's/--build-arg //g') \
		IMAGE=$(IMAGE) && $(COMPOSE) up -d --no-build

compose-down: ## Stop the compose stack (keeps its volumes)
	MODEL_DIR=- MODEL_VERSION=- MODEL_SHA256=- GIT_REVISION=- CREATED=- $(COMPOSE) down

container-test: venv docker-engine ## Build the serving image and run it for real (marker `container`)
	$(PY) -m pytest -m container tests/container $(PYTEST_ARGS)

# ---- the lockfile: one command to re-lock after editing pyproject.toml ------------------------------
lock: ## Re-resolve uv.lock from pyproject.toml (run after adding or changing a dependency), then sync .venv
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q uv==$(UV_VERSION)
	$(UV) lock
	$(MAKE) venv

lock-check: venv ## Fail when pyproject.toml and uv.lock disagree
	$(UV) lock --check
v2: venv ## Only the Open Inference Protocol v2 tests with real clients (tritonclient, kserve's own venv)
	$(PY) -m pytest -m v2 tests/service/test_v2_clients.py tests/loadtest/test_peer_cases.py $(PYTEST_ARGS)

.PHONY: docs
docs: venv ## Render docs/settings.md's tables from service/settings.py, Pulumi.yaml and the stack files
	$(PY) -m pipelines.devtools.settings_docs

.PHONY: haproxy
haproxy: ## Install Debian's haproxy (the local target's Service) if missing; idempotent
	@command -v haproxy >/dev/null || test -x /usr/sbin/haproxy || \
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends haproxy; }

.PHONY: wrk
wrk: ## Install Debian's wrk (the bench's load generator) if missing; idempotent
	@command -v wrk >/dev/null || \
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends wrk; }
