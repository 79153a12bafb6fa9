# The two commands that matter: `make demo` runs the whole system locally, `make test` runs every check.
# Both build what they need on a fresh clone: the project's environment (.venv, Python 3.13) and a separate
# one for the SAM CLI and cfn-lint (.tools-venv), because aws-sam-cli pins many packages.
SHELL := /bin/bash
.DEFAULT_GOAL := help

# pyenv selects 3.13 through .python-version; elsewhere any python3.13 on PATH will do.
PYTHON ?= $(shell command -v pyenv >/dev/null 2>&1 && pyenv which python3.13 2>/dev/null || command -v python3.13)
VENV := .venv
TOOLS := .tools-venv
PY := $(VENV)/bin/python
REGION ?= us-east-1
export SAM_CLI_TELEMETRY := 0
export AWS_DEFAULT_REGION ?= $(REGION)
PIP_QUIET := --quiet --disable-pip-version-check

.PHONY: help setup demo test lint typecheck template-check unit integration bench build clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-15s %s\n", $$1, $$2}'

$(VENV)/.installed: requirements-dev.txt layers/shared/requirements.txt
	@test -n "$(PYTHON)" || { echo "Python 3.13 not found: install it (pyenv install 3.13) or set PYTHON=" >&2; exit 1; }
	@echo "==> project environment ($(VENV)) on $$($(PYTHON) --version)"
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -m pip install $(PIP_QUIET) -r requirements-dev.txt >$(VENV)/pip.log 2>&1 || { cat $(VENV)/pip.log; exit 1; }
	@touch $@

$(TOOLS)/.installed: requirements-tools.txt
	@test -n "$(PYTHON)" || { echo "Python 3.13 not found" >&2; exit 1; }
	@echo "==> template tools environment ($(TOOLS))"
	@test -x $(TOOLS)/bin/python || $(PYTHON) -m venv $(TOOLS)
	@$(TOOLS)/bin/python -m pip install $(PIP_QUIET) -r requirements-tools.txt >$(TOOLS)/pip.log 2>&1 || { cat $(TOOLS)/pip.log; exit 1; }
	@touch $@

node_modules/.installed: package.json package-lock.json
	@echo "==> asl-validator (npm)"
	@npm ci --no-audit --no-fund --loglevel=error >/dev/null
	@touch $@

setup: $(VENV)/.installed $(TOOLS)/.installed node_modules/.installed ## Create the environments

lint: $(VENV)/.installed ## ruff (lint and format check)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: $(VENV)/.installed ## mypy on the shared package, the functions and the local stack
	$(VENV)/bin/mypy layers/shared/talonic_watchdog local $(wildcard functions/*/app.py)

template-check: $(TOOLS)/.installed node_modules/.installed ## cfn-lint, sam validate --lint, asl-validator
	$(TOOLS)/bin/cfn-lint template.yaml
	$(TOOLS)/bin/sam validate --lint --region $(REGION)
	node_modules/.bin/asl-validator --json-path statemachine/*.asl.json

unit: $(VENV)/.installed ## unit tests only
	$(PY) -m pytest tests/unit tests/local

test: lint typecheck template-check $(VENV)/.installed ## Every check and the whole test suite
	$(PY) -m pytest

demo: $(VENV)/.installed ## Run the system locally against the Talonic emulator
	PYTHONPATH=layers/shared $(PY) -m local.demo

bench: $(VENV)/.installed ## Benchmarks (issue 7): polling cost, cleanup throughput, cold start (~5 min)
	PYTHONPATH=layers/shared $(PY) -m bench.polling_cost
	PYTHONPATH=layers/shared $(PY) -m bench.cleanup_throughput
	PYTHONPATH=layers/shared $(PY) -m bench.cold_start

build: $(TOOLS)/.installed ## sam build (needs python3.13 on PATH), then bytecode for the read-only layer
	$(TOOLS)/bin/sam build
	@# Lambda's /opt is read-only, so a layer without .pyc is compiled again on every cold start (bench/cold_start.py
	@# measured about 0.5 s). unchecked-hash: the .pyc stays valid whatever mtimes the deployment package keeps.
	$(PYTHON) -m compileall -q --invalidation-mode unchecked-hash .aws-sam/build/SharedLayer/python

clean: ## Remove environments and caches
	rm -rf $(VENV) $(TOOLS) node_modules .aws-sam .pytest_cache .mypy_cache .ruff_cache .hypothesis
