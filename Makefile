# The two commands: `make run` (the site with demo data at http://127.0.0.1:8000) and `make test`.
# Both work on a fresh Debian machine as root: they create .venv and install what is missing.

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Re-run `pip install` only when requirements.txt or pyproject.toml changed since the last successful install.
# The editable install of this checkout's `flightdeck` package puts the `flightdeck` command into .venv/bin.
INSTALLED := $(VENV)/.requirements-installed
ENSURE_PACKAGES := platform/ensure-debian-packages
# g++ and ninja build the NVFP4 CPU kernels (modelzoo/fp4_kernels.py) the first time an NVFP4 run trains on CPU.
RUN_PACKAGES := redis-server g++ ninja-build
TEST_PACKAGES := redis-server g++ ninja-build postgresql chromium chromium-driver slurm-wlm munge slurmdbd mariadb-server
PROD_CHECK_PACKAGES := redis-server postgresql
PYTEST_ARGS ?=

.DEFAULT_GOAL := help
.PHONY: help run test prod-check gpu-check

help:
	@echo "make run   start web, worker, beat (and Redis if none runs) with demo data at http://127.0.0.1:8000"
	@echo "make test  run the whole test suite on a throw-away PostgreSQL + Redis (PYTEST_ARGS=... to narrow)"
	@echo "make gpu-check  on a CUDA host: fused-vs-pure Mamba-2 parity, bf16/NVFP4 steps, torchrun, throughput (skips without CUDA)"
	@echo "make prod-check  production mode (check --deploy, migrations, gunicorn, worker, beat) smoke-tested on a throw-away stack"

$(BIN)/python:
	@$(PYTHON) -c "import ensurepip" 2>/dev/null || $(ENSURE_PACKAGES) python3-venv
	$(PYTHON) -m venv $(VENV)

$(INSTALLED): requirements.txt pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -r requirements.txt
	$(BIN)/pip install -q --no-deps -e .
	touch $@

run: $(INSTALLED)
	@$(ENSURE_PACKAGES) $(RUN_PACKAGES)
	@mkdir -p var/redis var/staticfiles
	@# Redis comes up before seeding so the demo's studies are queued onto a real broker: seeding only launches
	@# them (seconds), and the worker started below trains them while the site already answers. A Redis that
	@# already listens on the default port (e.g. the Debian service) is reused; one we start is shut down on exit.
	@set -e; \
	if redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then \
		echo "Using the Redis already running on 127.0.0.1:6379"; \
	else \
		redis-server platform/redis.conf --daemonize yes --pidfile "$(CURDIR)/var/redis/redis.pid"; \
		trap 'redis-cli -h 127.0.0.1 -p 6379 shutdown >/dev/null 2>&1 || true' EXIT; \
		for i in $$(seq 50); do redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 && break; sleep 0.1; done; \
	fi; \
	$(BIN)/python manage.py migrate --noinput; \
	$(BIN)/python manage.py seed_demo; \
	$(BIN)/python manage.py start_demo_study; \
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/honcho --procfile platform/Procfile --app-root . start web worker beat

# Hermetic: ignore DATABASE_URL/REDIS_URL from the shell; the suite starts its own PostgreSQL and Redis.
test: $(INSTALLED)
	@$(ENSURE_PACKAGES) $(TEST_PACKAGES)
	env -u DATABASE_URL -u REDIS_URL FLIGHTDECK_REQUIRE_POSTGRES=1 $(BIN)/pytest $(PYTEST_ARGS)

# Hermetic like `test`: its own PostgreSQL and Redis; see platform/prod-check.
prod-check: $(INSTALLED)
	@$(ENSURE_PACKAGES) $(PROD_CHECK_PACKAGES)
	env -u DATABASE_URL -u REDIS_URL $(BIN)/python platform/prod-check

# The GPU path (benchmarks/gpu_check.py); prints one "skipped" line and succeeds without CUDA. On a CUDA host
# install requirements-gpu.txt first for the fused kernels (see its header).
gpu-check: $(INSTALLED)
	$(BIN)/python benchmarks/gpu_check.py
