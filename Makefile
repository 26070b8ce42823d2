# One-command entry points. `make help` lists them.
SHELL := /bin/bash
PYTHON_BOOTSTRAP ?= python3
VENV := .venv
BIN := $(abspath $(VENV)/bin)
export PATH := $(BIN):$(PATH)
export ANSIBLE_CONFIG := $(abspath ansible.cfg)
PORT ?= 8000
PLAYBOOKS := infrastructure/playbooks
ROLES := kind_cluster ingress monitoring custom_metrics sentiment_app canary
# Every pin lives in infrastructure/versions.yml. promtool of the deployed Prometheus version is built
# from the Go module proxy by the offline image factory (airgap/), cached outside the repo.
PINS := infrastructure/versions.yml
AIRGAP_CACHE_DIR ?= $(HOME)/.cache/sentiment-platform-airgap
PROMETHEUS_VERSION := $(shell sed -n 's/^prometheus_image: .*:\(v[0-9.]*\)$$/\1/p' $(PINS))
export PROMTOOL := $(AIRGAP_CACHE_DIR)/bin/prometheus-$(PROMETHEUS_VERSION)/promtool
COLLECTION_DIR := .build/collection
# The inventory of `make up` and `make render`: one directory or several (space-separated, later ones win),
# e.g. `make up INVENTORY=~/clusters/shop`.
INVENTORY ?= inventory/default
# AIRGAP=1: a machine that reaches no container registry (ours). The image factory's engine, kind and
# kubectl, and inventory/airgap over the inventory (mirrors to the local registry, see there).
AIRGAP ?= 0
KIND_VERSION := $(shell sed -n 's/^kind_version: *//p' $(PINS))
K8S_VERSION := $(shell sed -n 's/^kubernetes_version: *//p' $(PINS))
AIRGAP_PATH := $(AIRGAP_CACHE_DIR)/bin/kind-$(KIND_VERSION):$(AIRGAP_CACHE_DIR)/bin/kubernetes-$(K8S_VERSION)
ifeq ($(AIRGAP),1)
export PATH := $(AIRGAP_PATH):$(PATH)
export DOCKER_CONFIG := $(AIRGAP_CACHE_DIR)/docker-config
endif
inventory_args = $(foreach inventory,$(1),-i $(inventory)) $(if $(filter 1,$(2)),-i inventory/airgap)
# What `make up` stood up with (UP_INVENTORY, UP_AIRGAP): load, rollout, drift-demo, grafana-password and down
# reach the same cluster with the same tools without being told again; INVENTORY or AIRGAP given to them wins.
UP_SETTINGS := .build/up-settings.mk
-include $(UP_SETTINGS)
given = $(filter command line environment,$(origin $(1)))
CLUSTER_INVENTORY = $(if $(call given,INVENTORY),$(INVENTORY),$(or $(UP_INVENTORY),$(INVENTORY)))
CLUSTER_AIRGAP = $(if $(call given,AIRGAP),$(AIRGAP),$(or $(UP_AIRGAP),$(AIRGAP)))
# ansible-playbook <playbook> against that cluster: $(call cluster_playbook,load.yml)
cluster_playbook = $(if $(filter 1,$(CLUSTER_AIRGAP)),PATH=$(AIRGAP_PATH):$$PATH DOCKER_CONFIG=$(AIRGAP_CACHE_DIR)/docker-config) \
  ansible-playbook $(call inventory_args,$(CLUSTER_INVENTORY),$(CLUSTER_AIRGAP)) $(PLAYBOOKS)/$(1)
OUT ?= deploy/manifests
VARS ?=

.DEFAULT_GOAL := help
.PHONY: help venv lock model serve bench up load rollout drift-demo down render docs airgap airgap-up grafana-password tools e2e e2e-down \
        lint check-rendered collection molecule test-python test clean

help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-16s %s\n", $$1, $$2}'

venv: $(VENV)/.installed ## install the pinned Python tooling into .venv

$(VENV)/.installed: requirements-uv.txt requirements-dev.txt model-service/requirements.txt \
                    model-service/requirements-train.txt model-service/requirements-transformer.txt
	@$(PYTHON_BOOTSTRAP) -c 'import sys; v = sys.version_info[:2]; sys.exit(0 if (3, 11) <= v <= (3, 13) else \
	  "Python %d.%d found (%s); the platform needs 3.11 to 3.13 (ansible-core 2.19 controllers, NumPy wheels): \
	  make venv PYTHON_BOOTSTRAP=python3.12" % (*v, sys.executable))'
	test -x $(BIN)/python || $(PYTHON_BOOTSTRAP) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check --require-hashes -r requirements-uv.txt
	$(BIN)/uv pip install --quiet --python $(BIN)/python --require-hashes -r requirements-dev.txt
	touch $@

# Every requirements*.txt is a lock: every transitive pin with its sha256 hashes, so pip installs in
# hash-checking mode (the image build passes --require-hashes). Edit the *.in files, then `make lock`.
PIP_COMPILE = $(BIN)/pip-compile --generate-hashes --allow-unsafe --strip-extras --quiet --no-emit-index-url --no-emit-find-links
lock: venv ## re-resolve the *.in requirement files into the hash-pinned requirements*.txt locks
	cd model-service && $(PIP_COMPILE) -o requirements.txt requirements.in
	cd model-service && $(PIP_COMPILE) -o requirements-transformer.txt requirements-transformer.in
	cd model-service && $(PIP_COMPILE) -o requirements-transformer-gpu.txt requirements-transformer-gpu.in
	cd model-service && $(PIP_COMPILE) -o requirements-train.txt requirements-train.in
	$(PIP_COMPILE) -o requirements-dev.txt requirements-dev.in
	$(PIP_COMPILE) -o requirements-uv.txt requirements-uv.in

# --- the data scientist's loop -------------------------------------------------------------
model: venv ## train the sentiment model: MODEL=tfidf (default, model-service/artifacts) or MODEL=minilm
	$(MAKE) -C model-service model PYTHON=$(BIN)/python

serve: venv ## run the service locally on 127.0.0.1:$PORT (MODEL=tfidf|minilm; trains it first if needed)
	$(MAKE) -C model-service serve PYTHON=$(BIN)/python PORT=$(PORT)

bench: venv ## naive vs ours (MODEL=tfidf|minilm): req/s, p50, p99, errors, RSS, time to ready
	$(MAKE) -C model-service bench PYTHON=$(BIN)/python

# --- the platform -------------------------------------------------------------------------
up: venv ## stand up kind + Traefik + Prometheus + Grafana + adapter + the model (INVENTORY=dir; AIRGAP=1: no registry needed)
	mkdir -p $(dir $(UP_SETTINGS))
	printf 'UP_INVENTORY := %s\nUP_AIRGAP := %s\n' '$(INVENTORY)' '$(AIRGAP)' > $(UP_SETTINGS)
	ansible-playbook $(call inventory_args,$(INVENTORY),$(AIRGAP)) $(PLAYBOOKS)/site.yml

load: venv ## run hey through the ingress and assert that the HPA scales out
	$(call cluster_playbook,load.yml)

rollout: venv model ## ship a candidate model through Flagger's canary (ROLLOUT_VARS='sentiment_app_model=minilm ...')
	$(call cluster_playbook,rollout.yml) $(foreach v,$(ROLLOUT_VARS),-e $(v))

drift-demo: venv model ## in-distribution then shifted traffic to the cluster: the drift score and alert move
	$(call cluster_playbook,drift.yml)

down: venv ## delete the kind cluster; on a cluster of yours, remove exactly what the platform applied (CRDs: DOWN_TAGS=crds)
	$(call cluster_playbook,teardown.yml) $(if $(DOWN_TAGS),--tags $(DOWN_TAGS))
	rm -f $(UP_SETTINGS)

render: venv ## render every manifest from INVENTORY into OUT (deploy/manifests); VARS=file.yml layers extra vars
	ansible-playbook $(call inventory_args,$(INVENTORY),$(AIRGAP)) $(PLAYBOOKS)/render.yml -e platform_manifests_dir=$(abspath $(OUT)) $(if $(VARS),-e @$(abspath $(VARS)))

airgap: ## our machines: build every image from source and publish it into the local registry (cached)
	airgap/host/start-engine.sh >/dev/null
	airgap/host/build-python-base.sh
	airgap/build-all.sh
	airgap/publish.sh
	airgap/host/prepare-host.sh

airgap-up: airgap ## the whole stack on a machine that reaches no container registry: make airgap, then make up AIRGAP=1
	$(MAKE) up AIRGAP=1

e2e: venv model ## our machines: build every image offline; a cluster of its own: site.yml, checks, load, drift, idempotence, rolling restart
	E2E_MODEL=$(MODEL) python tests/e2e/e2e.py $(if $(filter 1,$(E2E_KEEP_CLUSTER)),--keep)

e2e-down: venv ## delete the cluster a `make e2e E2E_KEEP_CLUSTER=1` run left (the build cache stays)
	python tests/e2e/e2e.py --down

grafana-password: venv ## print Grafana's generated admin password
	$(call cluster_playbook,grafana_password.yml)

tools: $(PROMTOOL) ## build promtool of the deployed Prometheus version (Go module proxy)

$(PROMTOOL):
	airgap/build-binaries.sh prometheus

# --- checks ------------------------------------------------------------------------------
# Every shell script we own: the tracked *.sh files and every tracked file whose first line is an sh/bash
# shebang (airgap/host/*, the image entrypoints, .ci/run). tests/test_lint_coverage.py checks it misses none.
SHEBANG := \#!
SHELL_SCRIPTS = $(sort $(shell git ls-files '*.sh') $(shell git ls-files -z | xargs -0r grep -sIHm1 -d skip '' \
  | sed -nE 's%^([^:]+):$(SHEBANG) *(/usr)?/bin/(env +(-[^ ]+ +)*)?(ba|da|k)?sh( .*)?$$%\1%p'))
# go vet over our own Go programs (airgap/cmd) with the image factory's Go settings and caches (airgap/lib.sh):
# nothing is downloaded or compiled twice.
AIRGAP_GO_ENV = GOMODCACHE=$(AIRGAP_CACHE_DIR)/gomod GOCACHE=$(AIRGAP_CACHE_DIR)/gobuild GOPATH=$(AIRGAP_CACHE_DIR)/gopath \
  GOFLAGS='-modcacherw -buildvcs=false' GOTOOLCHAIN=local GOWORK=off CGO_ENABLED=0

lint: venv ## ruff, hadolint, yamllint, ansible-lint (production, offline), shellcheck, go vet, gofmt
	ruff check .
	ruff format --check .
	hadolint model-service/Dockerfile
	yamllint --strict .
	ansible-lint --strict
	shellcheck $(SHELL_SCRIPTS)
	cd airgap && $(AIRGAP_GO_ENV) go vet ./cmd/...
	@unformatted=$$(gofmt -l airgap/cmd) && [[ -z $$unformatted ]] || \
	  { echo "gofmt: not formatted (run gofmt -w airgap/cmd): $$unformatted" >&2; exit 1; }

docs: venv ## regenerate every role's defaults/main.yml, docs/variables.md and the README's knob table from the argument specs
	python infrastructure/tools/role_docs.py

check-rendered: venv ## fail if deploy/manifests or a file generated from the argument specs is stale
	python infrastructure/tools/role_docs.py --check
	rm -rf .build/render-check
	$(MAKE) --no-print-directory render OUT=.build/render-check INVENTORY=inventory/default AIRGAP=0 > /dev/null
	diff -r deploy/manifests .build/render-check || \
	  { echo "deploy/manifests is stale: run 'make render' and commit it" >&2; exit 1; }

collection: venv ## build the sentiment.platform collection tarball into .build/collection
	rm -rf $(COLLECTION_DIR)
	ansible-galaxy collection build infrastructure --output-path $(COLLECTION_DIR)

# Two scenarios at a time (each is one ansible-playbook process at a time; their directories are their own).
MOLECULE_JOBS ?= 2
molecule: venv tools ## Molecule scenario of every role (render, idempotence, verify)
	mkdir -p .build
	printf '%s\n' $(ROLES) | xargs -P $(MOLECULE_JOBS) -I '{}' sh -c 'echo "--- molecule: $$1"; \
	  log=$(abspath .build)/molecule-$$1.log; (cd infrastructure/roles/$$1 && molecule test > "$$log" 2>&1) \
	    || { echo "--- molecule: $$1 FAILED"; tail -n 60 "$$log"; exit 1; }' sh '{}'

# pytest-xdist: a worker per core (auto); most tests wait on a subprocess of their own (ansible-playbook, the
# service, promtool, docker build). PYTEST_WORKERS=0: one process.
PYTEST_WORKERS ?= auto
test-python: venv model tools ## pytest: service, model, metrics, drift, container, playbook helpers, rules
	pytest -n $(PYTEST_WORKERS)

# The e2e run (a real cluster, host settings for kind) joins `make test` in CI only (CI set to a true value:
# 1, true, yes or on, as .ci/run and hosted runners set it; CI=false or CI=0 is no CI), or with E2E=1:
# on a laptop `make test` changes nothing outside the repository.
CI_IS_TRUE := $(filter 1 true True TRUE yes Yes YES on On ON,$(strip $(CI)))
E2E ?= $(if $(CI_IS_TRUE),1,0)

test: lint check-rendered collection molecule test-python $(if $(filter 1,$(E2E)),e2e) ## everything CI runs (+ make e2e when CI is set or E2E=1)

clean: ## remove the venv, the model, build outputs and caches in the repo
	rm -rf $(VENV) model-service/artifacts .build .pytest_cache .ruff_cache
