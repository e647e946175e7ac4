# GPU Provider Operator: developer entry points. Every target sets itself up on a fresh machine.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3.11
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
PKG    := operator/gpu_provider

.PHONY: help venv node tools test unit e2e soak bench-lifecycle bench-intake lint fmt crds demo demo-down stack stack-down operator build-k8s

help: ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	@touch $(STAMP)

venv: $(STAMP) ## create .venv and install the package with its dev tools

lint: $(STAMP) ## ruff, mypy --strict, import-linter
	$(VENV)/bin/ruff check operator tests e2e bench docs charts
	$(VENV)/bin/ruff format --check operator tests e2e bench docs charts
	$(VENV)/bin/mypy $(PKG)
	$(VENV)/bin/lint-imports

fmt: $(STAMP) ## format and autofix
	$(VENV)/bin/ruff format operator tests e2e bench docs charts
	$(VENV)/bin/ruff check --fix operator tests e2e bench docs charts

unit: $(STAMP) ## unit tests only (no cluster, no chain)
	$(PY) -m pytest -q tests

crds: $(STAMP) build-k8s ## regenerate crds/ from the API models, and what the chart and manifests/ derive from them
	$(PY) -m gpu_provider crds --output-dir crds
	$(PY) charts/generate.py

NODE_STAMP := node_modules/.package-lock.json

$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	@touch $(NODE_STAMP)

node: $(NODE_STAMP) ## install the pinned npm dev tools (anvil, solcjs)

build-k8s: ## build the control plane, kwok and helm from Go modules (cached in ~/.cache/gpu-provider)
	hack/build-k8s.sh

tools: $(STAMP) $(NODE_STAMP) build-k8s

e2e: tools ## e2e tests only (real kube-apiserver + kwok, real anvil)
	$(PY) -m pytest -q e2e

test: lint tools ## lint, unit tests, then e2e tests against the real local stack (built on first use)
	$(PY) -m pytest -q tests e2e

soak: tools ## the long crash-safety runs: 50 orders and 20 lease applies with random SIGKILLs of the operator (make test runs 10 and 1)
	LIFECYCLE_CRASH_ORDERS=50 $(PY) -m pytest -q -s e2e/lifecycle/test_crash.py
	WORKLOAD_KILLS=20 $(PY) -m pytest -q e2e/workload -k killed

bench-lifecycle: tools ## issue 9's benchmark: a burst of 200 orders in one block, the bid engine with its real journal vs a bare script (bench/lifecycle/RESULTS.md)
	BURST_ORDERS=200 $(PY) -m pytest -q -s -p no:cacheprovider bench/lifecycle/burst.py

bench-intake: tools ## issue 9's benchmark: intake latency over 200 leases, LeaseCreated to GpuLease, the chain daemon's intake vs a bare script (bench/lifecycle/RESULTS.md)
	INTAKE_LEASES=200 $(PY) -m pytest -q -s -p no:cacheprovider bench/lifecycle/intake.py

stack: tools ## start the local cluster and anvil in the background (.local/kubeconfig, .local/devnet.json)
	$(PY) -m e2e.harness up

operator: $(STAMP) ## run `gpu-provider run` in the foreground against `make stack` (Ctrl-C stops it)
	@test -f .local/operator.yaml || { echo "no .local/operator.yaml: run make stack first" >&2; exit 1; }
	$(VENV)/bin/gpu-provider run --config .local/operator.yaml --kubeconfig .local/kubeconfig

stack-down: $(STAMP) ## stop what `make stack` or `make demo` started
	$(PY) -m e2e.harness down

demo: tools ## bring up the local stack and run the operator's main job end to end, printing each step
	$(PY) -m e2e.harness demo

demo-down: stack-down ## stop everything `make demo` started
