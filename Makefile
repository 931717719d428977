# MooseNG chaos lab. The targets are the user interface; see README.md.
#   make demo    build everything, start the cluster, show where to look
#   make test    the whole test suite (unit + real cluster); starts and stops what it needs
#   make up | down | clean | status | dev | restart SERVICE=...
#   make bench   benchmarks against the running cluster -> bench/results-<time>.{json,md,svg}

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
VBIN := $(VENV)/bin
ifndef COMPOSE
COMPOSE := $(shell docker compose version >/dev/null 2>&1 && echo "docker compose" || echo docker-compose)
endif
# Dev mode (README, "Dev mode"): `make dev` starts the cluster with docker-compose.dev.yml on
# top (the working tree's mooseng/ and chaosmoose/ mounted into the containers) and leaves
# the mark .dev, so that every later compose command here (restart, down, status, ...) uses
# the same files, until `make up` starts the normal cluster again. A COMPOSE_FILE of the
# caller (README: the AppArmor file) is kept under the dev file.
DEV_MARK := .dev
BASE_COMPOSE_FILE := $(subst :docker-compose.dev.yml,,$(or $(COMPOSE_FILE),docker-compose.yml$(if $(wildcard docker-compose.override.yml),:docker-compose.override.yml)))
DEV_COMPOSE_FILE := $(BASE_COMPOSE_FILE):docker-compose.dev.yml
ifneq ($(wildcard $(DEV_MARK)),)
export COMPOSE_FILE := $(DEV_COMPOSE_FILE)
endif
IMAGE ?= mooseng:latest
PROMETHEUS_IMAGE ?= mooseng-prometheus:latest
LOGS_IMAGE ?= mooseng-logs:latest
TOXIPROXY_IMAGE ?= mooseng-toxiproxy:latest
BROWSER_IMAGE ?= mooseng-browser:latest
BASE_IMAGE ?= debian:bookworm-slim
PYSYNCOBJ ?= pysyncobj==0.3.17
export BASE_IMAGE
PYTEST_ARGS ?=

.PHONY: help venv env wheels base-image images browser-image up dev restart down clean status demo experiment bench test unit-test lint settings-table docs-tables

help:
	@sed -n '2,5p' Makefile | sed 's/^# *//'

# --- host side -----------------------------------------------------------------------
$(VBIN)/.installed: setup.cfg pyproject.toml packaging/chaosmoose/pyproject.toml
	@echo "==> creating $(VENV) with the project installed (pip install -e .)"
	$(PYTHON) -m venv $(VENV)
	$(VBIN)/pip install -q --upgrade pip
	$(VBIN)/pip install -q -e '.[toolkit,test]'
	@# the distribution name `chaos discover chaosmoose` looks up (packaging/chaosmoose)
	$(VBIN)/pip install -q --no-deps -e packaging/chaosmoose
	@touch $@

venv: $(VBIN)/.installed

# Creates .env, or adds the keys an older .env lacks; never changes an existing value.
# Rewrites .env.public and .env.masters from it (the services' env_files).
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
	@echo "==> building $(TOXIPROXY_IMAGE) (on $(IMAGE))"
	@start=$$(date +%s); \
	docker build -q -t $(TOXIPROXY_IMAGE) --build-arg MOOSENG_IMAGE=$(IMAGE) -f images/toxiproxy/Dockerfile . >/dev/null \
	  && echo "==> $(TOXIPROXY_IMAGE) ready in $$(( $$(date +%s) - start ))s"
	@echo "==> building $(PROMETHEUS_IMAGE) (promtool checks the config and runs the rule tests)"
	@start=$$(date +%s); \
	docker build -q -t $(PROMETHEUS_IMAGE) --build-arg BASE_IMAGE=$(BASE_IMAGE) -f images/prometheus/Dockerfile monitoring >/dev/null \
	  && echo "==> $(PROMETHEUS_IMAGE) ready in $$(( $$(date +%s) - start ))s"
	@echo "==> building $(LOGS_IMAGE) (rsyslogd checks its configuration)"
	@start=$$(date +%s); \
	docker build -q -t $(LOGS_IMAGE) --build-arg BASE_IMAGE=$(BASE_IMAGE) -f images/logs/Dockerfile monitoring >/dev/null \
	  && echo "==> $(LOGS_IMAGE) ready in $$(( $$(date +%s) - start ))s"

# Headless Chromium for `chaosmoose report --pdf` on a host without it (not part of
# `images`: the cluster does not need it). The name is the one chaosmoose looks for.
browser-image: base-image
	@echo "==> building $(BROWSER_IMAGE) (headless Chromium from Debian's packages)"
	@start=$$(date +%s); \
	docker build -q -t $(BROWSER_IMAGE) --build-arg BASE_IMAGE=$(BASE_IMAGE) -f images/browser/Dockerfile images/browser >/dev/null \
	  && echo "==> $(BROWSER_IMAGE) ready in $$(( $$(date +%s) - start ))s"

# --- cluster ---------------------------------------------------------------------------
up: env images
	@rm -f $(DEV_MARK)
	@echo "==> starting the cluster"
	@start=$$(date +%s); \
	COMPOSE_FILE=$(BASE_COMPOSE_FILE) $(COMPOSE) up -d --no-build --remove-orphans \
	  && scripts/wait-healthy.sh 240 \
	  && echo "==> all services healthy $$(( $$(date +%s) - start ))s after 'up'"

# The same cluster running the working tree's mooseng/ and chaosmoose/ (docker-compose.dev.yml).
dev: env images
	@touch $(DEV_MARK)
	@echo "==> starting the cluster in dev mode ($(DEV_COMPOSE_FILE))"
	@start=$$(date +%s); \
	COMPOSE_FILE=$(DEV_COMPOSE_FILE) $(COMPOSE) up -d --no-build --remove-orphans \
	  && scripts/wait-healthy.sh 240 \
	  && echo "==> all services healthy $$(( $$(date +%s) - start ))s after 'dev'; after an edit:" \
	  && echo "    make restart SERVICE=<service>   (e.g. SERVICE=master-2, or SERVICE=\"client-1 client-2\")"

# Restart services and wait until they are healthy again; in dev mode they then run the
# working tree's code (no image build).
SERVICE ?=
restart:
	@if [ -z "$(strip $(SERVICE))" ]; then \
	  echo "usage: make restart SERVICE=<service> (several: SERVICE=\"master-1 client-2\")" >&2; exit 2; fi
	@[ -f $(DEV_MARK) ] || echo "note: not in dev mode (make dev): $(SERVICE) restarts with its image's code"
	@start=$$(date +%s); \
	$(COMPOSE) restart $(SERVICE) && scripts/wait-healthy.sh 120 $(SERVICE) \
	  && echo "==> $(SERVICE) healthy again $$(( $$(date +%s) - start ))s after 'restart'"

# Stop and remove the containers (each with its anonymous volumes) and networks; named
# volumes, the cluster's data, stay for the next `make up` (scripts/teardown.sh).
down:
	@COMPOSE="$(COMPOSE)" scripts/teardown.sh

# Leave nothing of the project: containers, named and anonymous volumes, networks, the
# images it built (label org.mooseng.project; the base image if make-base-image.sh made
# it), build/. Ends by listing what is left and fails if anything is (scripts/leftovers.sh).
clean:
	-@COMPOSE="$(COMPOSE)" scripts/teardown.sh --volumes --images
	rm -rf build
	@scripts/leftovers.sh

status: venv
	@$(COMPOSE) ps
	@$(VBIN)/mooseng status || true

demo: venv up
	@$(VBIN)/mooseng status || true
	@echo
	@$(MAKE) --no-print-directory experiment EXP=leader-loss
	@echo
	@echo "==> a small test data set, so the cluster is not empty (manifest in runs/current/datasets/demo/)"
	@$(VBIN)/chaosmoose data generate --dir demo --size 64MiB --files 100 --replace
	@echo
	@echo "Try next:"
	@echo "  $(VBIN)/chaosmoose data verify --dir demo   # re-read the demo data through another client"
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

# --- benchmarks ------------------------------------------------------------------------
# The benchmark suite against the running cluster (it never starts or restarts it):
# idle cost, I/O through FUSE against the disk, data set throughput, failover (README,
# "Benchmarks"). Results: bench/results-<UTC time>.json, .md and .svg.
#   make bench BENCH_ARGS="--short"              one small round of each
#   make bench BENCH_ARGS="--only io"            one of them (idle, io, data, failover, replication)
#   make bench BENCH_ARGS="--with-replication"   also kill a chunkserver, time re-replication
BENCH_ARGS ?=
bench: venv
	$(VBIN)/python scripts/bench.py $(BENCH_ARGS)

# --- tests -----------------------------------------------------------------------------
unit-test: venv
	$(VBIN)/pytest tests/unit -q $(PYTEST_ARGS)

# The cluster tests start the cluster themselves (tests/cluster/conftest.py runs `make up`)
# and stop it again if they started it.
test: venv env images
	$(VBIN)/pytest tests -q -rs --durations=25 $(PYTEST_ARGS)

lint: venv
	$(VBIN)/ruff check mooseng chaosmoose tests

# Rewrite the README's settings table from the code (tests/unit/test_settings.py checks it).
settings-table: venv
	@$(VBIN)/python scripts/update-readme-settings.py

# Rewrite docs/chaosmoose.md's generated tables (tests/unit/test_docs_tables.py checks them).
docs-tables: venv
	@$(VBIN)/python scripts/update-docs-tables.py
