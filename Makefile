# GPU Provider Operator: developer entry points. Every target sets itself up on a fresh machine.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3.11
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
PKG    := operator/gpu_provider

.PHONY: help venv test unit e2e lint fmt crds demo demo-down stack stack-down build-k8s clean

help: ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	@touch $(STAMP)

venv: $(STAMP) ## create .venv and install the package with its dev tools

lint: $(STAMP) ## ruff, mypy --strict, import-linter
	$(VENV)/bin/ruff check operator tests e2e bench
	$(VENV)/bin/ruff format --check operator tests e2e bench
	$(VENV)/bin/mypy $(PKG)
	$(VENV)/bin/lint-imports

fmt: $(STAMP) ## format and autofix
	$(VENV)/bin/ruff format operator tests e2e bench
	$(VENV)/bin/ruff check --fix operator tests e2e bench

unit: $(STAMP) ## unit tests only (no cluster, no chain)
	$(PY) -m pytest -q tests

crds: $(STAMP) ## regenerate crds/ from the API models
	$(PY) -m gpu_provider crds --output-dir crds

test: lint ## lint, unit tests, then e2e tests against the real local stack (built on first use)
	$(PY) -m pytest -q tests
