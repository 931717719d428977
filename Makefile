# MooseNG chaos lab. The targets are the user interface; see README.md.
#   make demo    build everything, start the cluster, show where to look
#   make test    the whole test suite (unit + real cluster); starts and stops what it needs
#   make up | down | clean | status

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
VBIN := $(VENV)/bin
COMPOSE := $(shell docker compose version >/dev/null 2>&1 && echo "docker compose" || echo docker-compose)
IMAGE ?= mooseng:latest
PROMETHEUS_IMAGE ?= mooseng-prometheus:latest
LOGS_IMAGE ?= mooseng-logs:latest
BASE_IMAGE ?= debian:bookworm-slim
PYSYNCOBJ ?= pysyncobj==0.3.17
export BASE_IMAGE
PYTEST_ARGS ?=

.PHONY: help venv env wheels base-image images up down clean status demo experiment test unit-test lint settings-table

help:
	@sed -n '2,4p' Makefile | sed 's/^# *//'

# --- host side -----------------------------------------------------------------------
$(VBIN)/.installed: setup.cfg pyproject.toml
	@echo "==> creating $(VENV) with the project installed (pip install -e .)"
	$(PYTHON) -m venv $(VENV)
	$(VBIN)/pip install -q --upgrade pip
	$(VBIN)/pip install -q -e '.[toolkit,test]'
	@touch $@

venv: $(VBIN)/.installed

# Creates .env, or adds the keys an older .env lacks; never changes an existing value.
env:
	@scripts/make-env.sh .env

# --- images ----------------------------------------------------------------------------
# Third-party wheels are fetched on the host (its pip knows this machine's CA setup);
# the image build installs them with --no-index.
wheels: build/wheels/.done
build/wheels/.done: Makefile
	@mkdir -p build/wheels
	$(PYTHON) -m pip wheel -q --no-deps -w build/wheels '$(PYSYNCOBJ)'
	@touch $@

base-image:
	@images/make-base-image.sh

images: base-image wheels
	@echo "==> building $(IMAGE) (FROM $(BASE_IMAGE))"
	@start=$$(date +%s); \
	docker build -q -t $(IMAGE) --build-arg BASE_IMAGE=$(BASE_IMAGE) -f images/mooseng/Dockerfile . >/dev/null \
	  && echo "==> $(IMAGE) ready in $$(( $$(date +%s) - start ))s"
	@echo "==> building $(PROMETHEUS_IMAGE) (promtool checks the config and runs the rule tests)"
	@start=$$(date +%s); \
	docker build -q -t $(PROMETHEUS_IMAGE) --build-arg BASE_IMAGE=$(BASE_IMAGE) -f images/prometheus/Dockerfile monitoring >/dev/null \
	  && echo "==> $(PROMETHEUS_IMAGE) ready in $$(( $$(date +%s) - start ))s"
	@echo "==> building $(LOGS_IMAGE) (rsyslogd checks its configuration)"
	@start=$$(date +%s); \
	docker build -q -t $(LOGS_IMAGE) --build-arg BASE_IMAGE=$(BASE_IMAGE) -f images/logs/Dockerfile monitoring >/dev/null \
	  && echo "==> $(LOGS_IMAGE) ready in $$(( $$(date +%s) - start ))s"

# --- cluster ---------------------------------------------------------------------------
up: env images
	@echo "==> starting the cluster"
	@start=$$(date +%s); \
	$(COMPOSE) up -d --no-build --remove-orphans && scripts/wait-healthy.sh 240 \
	  && echo "==> all services healthy $$(( $$(date +%s) - start ))s after 'up'"

down:
	$(COMPOSE) down --remove-orphans

clean:
	-$(COMPOSE) down --volumes --remove-orphans --rmi local
	-docker image rm $(IMAGE) $(PROMETHEUS_IMAGE) $(LOGS_IMAGE) 2>/dev/null
	-@if docker image inspect $(BASE_IMAGE) --format '{{index .Config.Labels "org.mooseng.base-image"}}' 2>/dev/null | grep -q true; then \
	  docker image rm $(BASE_IMAGE); fi
	rm -rf build

status: venv
	@$(COMPOSE) ps
	@$(VBIN)/mooseng status || true

demo: venv up
	@$(VBIN)/mooseng status || true
	@echo
	@$(MAKE) --no-print-directory experiment EXP=leader-loss
	@echo
	@echo "Try next:"
	@echo "  $(COMPOSE) exec client-1 bash      # a client shell; MooseFS is mounted at /mnt/client-1"
	@echo "  curl -s 127.0.0.1:9431/status       # master-1's agent (9432, 9433 for the others)"
	@echo "  make experiment EXP=leader-pause    # or follower-loss; see experiments/"
	@echo "  make status | make down | make clean"

# Run one experiment from experiments/ with its own run directory under runs/.
EXP ?= leader-loss
experiment: venv
	@run=runs/$(EXP)-$$(date -u +%Y%m%dT%H%M%SZ); mkdir -p $$run; \
	echo "==> chaos run experiments/$(EXP).json (run directory $$run)"; \
	start=$$(date +%s); \
	CHAOSMOOSE_RUN_DIR=$$run $(VBIN)/chaos --log-file $$run/chaostoolkit.log run \
	  --journal-path $$run/journal.json experiments/$(EXP).json; code=$$?; \
	echo "==> exit $$code after $$(( $$(date +%s) - start ))s; journal: $$run/journal.json"; \
	if [ -f $$run/workload/*/check.json ]; then echo "==> checker: $$(python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print({k: r.get(k) for k in ("valid","acknowledged","intact","lost","corrupt")}, "longest unavailability", r.get("unavailability",{}).get("longest_s"), "s")' $$run/workload/*/check.json)"; fi; \
	[ -f $$run/journal.json ] && echo "==> report: $$($(VBIN)/chaosmoose report $$run)"; \
	exit $$code

# --- tests -----------------------------------------------------------------------------
unit-test: venv
	$(VBIN)/pytest tests/unit -q $(PYTEST_ARGS)

# The cluster tests start the cluster themselves (tests/cluster/conftest.py runs `make up`)
# and stop it again if they started it.
test: venv env images
	$(VBIN)/pytest tests -q -rs $(PYTEST_ARGS)

lint: venv
	$(VBIN)/ruff check mooseng chaosmoose tests

# Rewrite the README's settings table from the code (tests/unit/test_settings.py checks it).
settings-table: venv
	@$(VBIN)/python scripts/update-readme-settings.py
