# Chowist Lab. `make test` and `make experiment` are all a fresh machine needs: every target installs
# what it uses. `make` alone lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
PY := $(BIN)/python
STAMP := $(VENV)/.installed
NAME ?= baseline
PROFILE ?= embedded
export PATH := $(CURDIR)/$(BIN):$(PATH)

# Debian packages the lab runs for real: promtool/prometheus, amtool/alertmanager, compose validation.
DEBIAN_PACKAGES := prometheus prometheus-alertmanager docker-compose pgbouncer wrk memcached postgresql-client nginx prometheus-postgres-exporter prometheus-redis-exporter prometheus-nginx-exporter valgrind mtail prometheus-process-exporter
DEBIAN_COMMANDS := promtool prometheus amtool prometheus-alertmanager docker-compose wrk memcached pg_dump nginx prometheus-postgres-exporter prometheus-redis-exporter prometheus-nginx-exporter valgrind mtail prometheus-process-exporter

.PHONY: help
help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[36m%-16s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

# --- setup ------------------------------------------------------------------------------------------
# requirements/lock.txt holds the exact version and hashes of every package the app, the lab and the tests use;
# pyproject.toml keeps the ranges (for installing elsewhere) that `make lock` resolves it from.
LOCK := requirements/lock.txt
$(STAMP): $(LOCK)
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Chowist Lab needs Python 3.11 or newer; found " + sys.version.split()[0])'
	@test -x $(PY) || $(PYTHON) -m venv $(VENV) || { echo "error: could not create $(VENV): install python3-venv (apt-get install python3-venv)"; exit 1; }
	$(PY) -m pip install --quiet --require-hashes --no-deps -r $(LOCK)
	@# A venv made from an older lock keeps what the new one dropped: pip-sync removes it.
	$(BIN)/pip-sync --quiet $(LOCK)
	@touch $@

.PHONY: setup
setup: $(STAMP) ## Create .venv and install exactly requirements/lock.txt (hash-checked)

# pip-compile from PyPI alone (no machine-local indexes or wheel folders), so the lock resolves the same anywhere.
PIP_COMPILE = env -u PIP_FIND_LINKS PIP_CONFIG_FILE=/dev/null $(BIN)/pip-compile --quiet --generate-hashes --allow-unsafe \
	--strip-extras --no-emit-index-url --no-emit-find-links $(if $(filter 1 on yes true,$(UPGRADE)),--upgrade,) \
	$(foreach p,$(PACKAGE),--upgrade-package $(p))
.PHONY: lock
lock: $(STAMP) ## Re-resolve the lock files from pyproject.toml and requirements/*.in (UPGRADE=1: newest allowed; PACKAGE=name: that one)
	$(PIP_COMPILE) --extra lab --extra dev -o $(LOCK) pyproject.toml
	@# The app alone (the compose images), at exactly the versions of the full lock.
	$(PIP_COMPILE) -c $(LOCK) -o requirements/app.txt pyproject.toml
	@# What Debian 12's Python (3.11.2, the compose images') needs beyond it.
	$(PIP_COMPILE) -o requirements/debian-python.txt requirements/debian-python.in
	$(PIP_COMPILE) -o requirements/sentry-sdk-2.txt requirements/sentry-sdk-2.in
	$(PIP_COMPILE) -o requirements/bugsink.txt requirements/bugsink.in
	@echo "lock files written; run 'make test' before committing them"

# The newest versions pyproject.toml allows, in a venv of their own: a breaking release fails here, named, before
# it reaches a fresh clone through `make lock`.
LATEST_VENV := .venv-latest
.PHONY: test-latest
test-latest: system-deps ## Run the suite on the newest allowed versions instead of the lock; names the packages that break it
	rm -rf $(LATEST_VENV)
	$(PYTHON) -m venv $(LATEST_VENV)
	$(LATEST_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(LATEST_VENV)/bin/python -m pip install --quiet --upgrade --upgrade-strategy eager ".[lab,dev]"
	$(LATEST_VENV)/bin/python -m requirements.drift --venv $(LATEST_VENV) --lock $(LOCK) -- $(PYTEST_ARGS)

.PHONY: system-deps
system-deps: ## Install the Debian packages the lab uses (prometheus, alertmanager, ...) when missing
	@missing=""; for c in $(DEBIAN_COMMANDS); do command -v $$c >/dev/null || missing="$$missing $$c"; done; \
	if [ -n "$$missing" ]; then \
	  if command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
	    echo "installing Debian packages for:$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(DEBIAN_PACKAGES) >/dev/null; \
	  else \
	    echo "error: missing commands:$$missing"; \
	    echo "       install the Debian packages: sudo apt-get install --no-install-recommends $(DEBIAN_PACKAGES)"; \
	    exit 1; \
	  fi; \
	fi

# --- quality ----------------------------------------------------------------------------------------
.PHONY: lint
lint: $(STAMP) ## Check style (ruff) and the import contracts (import-linter, configured in pyproject.toml)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports --no-logo

.PHONY: format
format: $(STAMP) ## Reformat and auto-fix with ruff
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

.PHONY: test
test: $(STAMP) system-deps lint ## Lint, then run the test suite (SQLite; again on PostgreSQL when reachable)
	$(BIN)/pytest
	@$(MAKE) --no-print-directory test-postgres

TEST_POSTGRES_URL ?= postgres://postgres@127.0.0.1:5432/chowist
# The folders whose code reads DATABASE_URL. The rest (rule, dashboard, log and compose configs, and the
# experiment runner, whose lab picks its own database per profile) would only repeat the SQLite run.
DATABASE_TEST_PATHS = chowist workers observability
.PHONY: test-postgres
test-postgres: $(STAMP) ## Run the suite against PostgreSQL (TEST_POSTGRES_URL) when it is reachable
	@if $(PY) -c "import psycopg,sys; psycopg.connect('$(TEST_POSTGRES_URL)'.rsplit('/',1)[0]+'/postgres', connect_timeout=2).close()" 2>/dev/null; then \
	  echo "PostgreSQL reachable: running the suite against $(TEST_POSTGRES_URL)"; \
	  DATABASE_URL=$(TEST_POSTGRES_URL) $(BIN)/pytest -p no:cacheprovider $(DATABASE_TEST_PATHS); \
	else \
	  echo "PostgreSQL is not reachable at $(TEST_POSTGRES_URL): skipping the PostgreSQL run"; \
	fi

# --- the app ----------------------------------------------------------------------------------------
.PHONY: migrate
migrate: $(STAMP) ## Apply database migrations
	$(PY) manage.py migrate --noinput

.PHONY: seed
seed: migrate ## Load deterministic demo data (idempotent; never deletes)
	$(PY) manage.py seed_demo

.PHONY: seed-benchmark
seed-benchmark: $(STAMP) ## Time a full-size seed_demo on a fresh SQLite database (target: under 60 s)
	@dir=$$(mktemp -d "$(CURDIR)/var/seed-benchmark.XXXXXX"); trap 'rm -rf "$$dir"' EXIT; \
	VAR_DIR=$$dir $(PY) manage.py migrate -v0 && \
	echo "timing: VAR_DIR=$$dir $(PY) manage.py seed_demo" && \
	time VAR_DIR=$$dir $(PY) manage.py seed_demo

.PHONY: backup
backup: $(STAMP) ## Back up the database while the app serves (SQLite online backup / pg_dump) to VAR_DIR/backups/ or OUTPUT=file
	$(PY) manage.py backup$(if $(OUTPUT), --output $(OUTPUT),)

.PHONY: restore
restore: $(STAMP) ## Restore FILE=backup into the database (refuses a non-empty one unless FORCE=1); stop the app first
	@test -n "$(FILE)" || { echo "usage: make restore FILE=var/backups/<backup> [FORCE=1]"; exit 2; }
	$(PY) manage.py restore $(FILE)$(if $(filter 1 on yes true,$(FORCE)), --force,)

.PHONY: run
run: migrate ## Serve the app with gunicorn on 127.0.0.1:8000 (gunicorn.conf.py)
	$(BIN)/gunicorn -c gunicorn.conf.py chowist.wsgi:application

.PHONY: dev
dev: migrate ## Serve the app with Django's development server
	$(PY) manage.py runserver 127.0.0.1:8000

.PHONY: worker
worker: migrate ## Run the huey consumer (background jobs; metrics on CONSUMER_METRICS_PORT)
	env -u PROMETHEUS_MULTIPROC_DIR $(PY) manage.py run_huey

.PHONY: queue-status
queue-status: $(STAMP) ## Print queue depth, oldest pending age, inbox backlog and lag percentiles
	$(PY) manage.py queue_status

.PHONY: queue-bench
queue-bench: $(STAMP) system-deps ## Measure accepted/s, drained/s and lag at 500/s on SQLite and Redis huey
	$(PY) -m experiments.bench.queue_bench --json reports/queue-bench.json

# --- the native lab ---------------------------------------------------------------------------------
LAB_ARGS := --profile $(PROFILE)$(if $(filter 1 on yes true,$(PGBOUNCER)), --pgbouncer,)$(if $(PROXY), --proxy $(if $(filter off no false 0 none,$(PROXY)),none,$(PROXY)),)$(if $(INSTANCES), --instances $(INSTANCES),)$(if $(filter 1 on yes true,$(REPLICA)), --replica,)
.PHONY: lab-up
lab-up: $(STAMP) system-deps ## Start the lab in the background: app, consumer, Prometheus, Alertmanager (PROFILE=embedded|services, PGBOUNCER=on, PROXY=off for no nginx, INSTANCES=N, REPLICA=on)
	$(PY) -m experiments.lab up $(LAB_ARGS)

.PHONY: lab-down
lab-down: $(STAMP) ## Stop every lab process (harmless when nothing runs)
	$(PY) -m experiments.lab down

.PHONY: lab-status
lab-status: $(STAMP) ## Show each lab component; non-zero exit when one is down or crashed
	$(PY) -m experiments.lab status

# --- experiments ------------------------------------------------------------------------------------
.PHONY: experiment
experiment: $(STAMP) system-deps ## Run an experiment (NAME=baseline; `make experiments-list`) and write reports/<run-id>/
	$(PY) -m experiments.run $(NAME)$(if $(filter command line environment,$(origin PROFILE)), --profile $(PROFILE),)

.PHONY: experiments-list
experiments-list: $(STAMP) ## List the experiment catalogue (experiments/catalogue/*.yaml)
	$(PY) -m experiments.run --list

# --- SLOs and rules ---------------------------------------------------------------------------------
.PHONY: slo
slo: $(STAMP) ## Regenerate the lab's rule files and dashboards (python -m pack --lab) and the Prometheus/Alertmanager configs
	$(PY) -m pack --lab
	$(PY) -m prometheus.generate

# --- dashboards -------------------------------------------------------------------------------------
.PHONY: dashboards
dashboards: $(STAMP) ## Regenerate grafana/dashboards/*.json and grafana/versions.json (and the rule files): python -m pack --lab
	$(PY) -m pack --lab

.PHONY: dashboards-check
dashboards-check: $(STAMP) ## Fail if the committed dashboards or rule files are not what `make dashboards` writes
	$(PY) -m pack --lab --check

# --- compose stack ----------------------------------------------------------------------------------
# compose/stack.py runs it with Docker when an engine answers, else with podman (Debian's, configured by it: see
# compose/README.md). Secrets come from compose/.env (gitignored); `down` and validation work on the example.
STACK = $(PY) -m compose.stack
NEED_COMPOSE = command -v docker-compose >/dev/null || { echo "error: docker-compose not found: apt-get install --no-install-recommends docker-compose"; exit 1; }

.PHONY: stack-check
stack-check: ## Validate compose/docker-compose.yml offline (no container engine needed)
	@$(NEED_COMPOSE)
	docker-compose --project-directory compose --env-file compose/.env.example -f compose/docker-compose.yml config -q

.PHONY: stack-up
stack-up: $(STAMP) ## Build the images (Debian packages) and start the stack: Docker, or podman without one (APP_REPLICAS=2; PROFILES=ui adds Grafana, Loki, Tempo: registry needed)
	@$(NEED_COMPOSE)
	$(STACK) up --scale $${APP_REPLICAS:-2}

.PHONY: stack-down
stack-down: $(STAMP) ## Stop the compose stack (named volumes are kept)
	@$(NEED_COMPOSE)
	$(STACK) down

.PHONY: stack-wheels
stack-wheels: $(STAMP) ## Download the app lock's wheels into compose/wheels/ (the app image installs them offline)
	$(STACK) wheels

# Without a Docker engine the stack runs on podman; these are what it needs (compose/stack.py PODMAN_PACKAGES).
PODMAN_PACKAGES := podman runc docker-compose mmdebstrap golang-github-containernetworking-plugin-dnsname
.PHONY: stack-deps
stack-deps: ## Install podman and what it needs to run the stack (Debian packages) when there is neither it nor Docker
	@if ! command -v docker >/dev/null && { ! command -v podman >/dev/null || ! command -v mmdebstrap >/dev/null || ! command -v docker-compose >/dev/null || ! test -e /usr/lib/cni/dnsname; }; then \
	  if command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
	    echo "installing Debian packages: $(PODMAN_PACKAGES)"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(PODMAN_PACKAGES) >/dev/null; \
	  else \
	    echo "error: no Docker, and podman is incomplete: sudo apt-get install --no-install-recommends $(PODMAN_PACKAGES)"; \
	    exit 1; \
	  fi; \
	fi

.PHONY: stack-test
# One app replica keeps the shared machine's load down; STACK_TEST_REPLICAS=2 adds the rolling-restart check.
STACK_TEST_REPLICAS ?= 1
stack-test: $(STAMP) stack-deps ## Build, start and check the compose stack for real (podman here), then remove it (3 min; about 7 before any image is built)
	$(PY) -m compose.stack_test --scale $(STACK_TEST_REPLICAS)

# --- observability ----------------------------------------------------------------------------------
.PHONY: errors-up
errors-up: $(STAMP) ## Start Bugsink (Sentry-protocol error tracker) on 127.0.0.1:BUGSINK_PORT (8010); prints the SENTRY_DSN
	$(PY) -m experiments.lab.bugsink up

.PHONY: errors-down
errors-down: $(STAMP) ## Stop the Bugsink started by errors-up
	$(PY) -m experiments.lab.bugsink down

.PHONY: fuzz
fuzz: $(STAMP) ## Replay issue 23's hostile inputs against a local gunicorn (loopback, bounded): 5xx, hangs, leaks
	$(PY) -m experiments.fuzz.replay --report reports/fuzz.json

.PHONY: bench-overhead
bench-overhead: $(STAMP) system-deps ## Instrumentation overhead: gunicorn with OBSERVABILITY on vs off (wrk, interleaved)
	$(PY) -m experiments.bench.overhead

.PHONY: bench-endpoints
bench-endpoints: $(STAMP) system-deps ## Cost per endpoint vs a minimal Django view: callgrind instructions + wrk (FULL=1: full demo data)
	$(PY) -m experiments.bench.endpoints $(if $(filter 1 on yes true,$(FULL)),--full,) --report reports/bench-endpoints.json

.PHONY: bench-instructions
bench-instructions: $(STAMP) ## Instrumentation cost in instructions per request (callgrind; run bench-overhead once first)
	$(PY) -m experiments.bench.overhead_profile --json reports/overhead-instructions.json
