# One-command entry points. `make help` lists them.
SHELL := /bin/bash
PYTHON_BOOTSTRAP ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8000

.DEFAULT_GOAL := help
.PHONY: help venv model serve bench lint test test-python clean

help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

venv: $(VENV)/.installed ## install the pinned Python tooling into .venv

$(VENV)/.installed: requirements-dev.txt model-service/requirements.txt model-service/requirements-train.txt
	test -x $(BIN)/python || $(PYTHON_BOOTSTRAP) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

model: venv ## train the sentiment model (model-service/artifacts)
	$(MAKE) -C model-service model PYTHON=../$(BIN)/python

serve: venv ## run the service locally on 127.0.0.1:$PORT (trains the model first if needed)
	$(MAKE) -C model-service serve PYTHON=../$(BIN)/python PORT=$(PORT)

bench: venv ## naive vs ours: req/s, p50, p99, errors, RSS, time to ready
	$(MAKE) -C model-service bench PYTHON=../$(BIN)/python

lint: venv ## ruff, hadolint, yamllint
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/hadolint model-service/Dockerfile

test-python: venv model ## pytest: unit, HTTP, metrics, drift, model quality, container
	$(BIN)/pytest

test: lint test-python ## everything CI runs

clean: ## remove the venv, the model and caches
	rm -rf $(VENV) model-service/artifacts .pytest_cache .ruff_cache
