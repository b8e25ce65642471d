# Bazaar — two commands on a fresh machine: `make run` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PY := $(BIN)/python
HOST ?= 127.0.0.1
PORT ?= 8000
# The watch server (GET /api/kv/watch for many watchers, ASGI) beside the app server; 0 = none.
WATCH_PORT ?= 8100
# `make test PYTEST_ARGS="-k cache"` to narrow (both phases of `make pytest`). PYTEST_WORKERS: the xdist workers of
# the parallel phase; 0 runs the whole suite in one process, as before issue 19.
PYTEST_ARGS ?=
PYTEST_WORKERS ?= 2

export PIP_DISABLE_PIP_VERSION_CHECK := 1
# Links that leave the site (share link, QR code, e-mails) name SITE_URL: from the environment, else .env, else the
# address this server is started on (so `make run PORT=8001` shares :8001, not the default :8000).
SITE_URL_ENV = SITE_URL="$${SITE_URL:-$$(sed -n 's/^SITE_URL=//p' .env 2>/dev/null)}"; SITE_URL="$${SITE_URL:-http://$(HOST):$(PORT)}"

.PHONY: install run serve demo test lint typecheck migrations-check pytest screenshots bench bench-ab bench-report stack stack-down stack-test clean lock fmt codes-check

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Reinstall only when a lock or pyproject changes. Development installs the dev lock (runtime + tools);
# production (deploy/Dockerfile, `pip install .`) the runtime lock only.
$(VENV)/.installed: requirements-dev.lock requirements.lock pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q --require-hashes -r requirements-dev.lock
	$(BIN)/pip install -q --no-deps -e .
	touch $@

install: $(VENV)/.installed

# Both locks, hash-checked, from pyproject.toml; uv is a dev dependency, so `make lock` works on a fresh machine.
# Existing pins are kept (uv prefers the versions already in -o); `make lock LOCK_ARGS=--upgrade` moves them.
lock: install
	$(BIN)/uv pip compile pyproject.toml --extra dev --generate-hashes --python-version 3.11 $(LOCK_ARGS) -o requirements-dev.lock
	$(BIN)/uv pip compile pyproject.toml --generate-hashes --python-version 3.11 -c requirements-dev.lock -o requirements.lock

.env:
	@$(PYTHON) deploy/make_env.py > .env
	@echo "wrote .env (local production settings, plain http on 127.0.0.1)"

demo: install .env
	$(PY) manage.py migrate --noinput -v 0
	$(PY) manage.py demo --base-url http://$(HOST):$(PORT)

# make run: install, migrate, demo data, collect static, then the production WSGI server on 127.0.0.1:8000
# and the watch server on 127.0.0.1:8100.
run: install .env
	$(PY) manage.py migrate --noinput -v 0
	$(PY) manage.py collectstatic --noinput -v 0
	@$(PY) manage.py demo --base-url http://$(HOST):$(PORT)
	@echo ""
	@echo "Bazaar is starting on http://$(HOST):$(PORT)/"
	@echo "  home            http://$(HOST):$(PORT)/"
	@echo "  API docs        http://$(HOST):$(PORT)/api/docs"
	@echo "  admin           http://$(HOST):$(PORT)/admin/"
	@echo "  log in/sign up  http://$(HOST):$(PORT)/accounts/login/   http://$(HOST):$(PORT)/accounts/signup/"
	@echo "  health          http://$(HOST):$(PORT)/healthz  /readyz  /metrics"
	@echo "  KV watch        http://$(HOST):$(WATCH_PORT)/api/kv/watch  (the watch server: thousands of watchers;"
	@echo "                  on :$(PORT) the same endpoint lets only a few wait per process)"
	@echo "Stop with Ctrl-C."
	$(SITE_URL_ENV) $(BIN)/python deploy/serve.py --host $(HOST) --port $(PORT) --watch-port $(WATCH_PORT)

serve: install
	$(SITE_URL_ENV) $(BIN)/python deploy/serve.py --host $(HOST) --port $(PORT) --watch-port $(WATCH_PORT)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

fmt: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

typecheck: install
	$(BIN)/mypy bazaar tests bench deploy conftest.py

migrations-check: install
	$(PY) manage.py makemigrations --check --dry-run

# Two phases (issue 19): the parallel-safe tests on PYTEST_WORKERS xdist workers, then the `serial` ones (and the
# browser, worker and stack families) in one process; conftest.py's --serial deselects, so -m/-k narrow both. A
# phase that selects nothing (exit 5) is no failure; both run, and the worse exit wins. The error-code
# reachability evidence of the first phase is carried to the second, which decides (tests/contract/answers.py).
pytest: install
ifeq ($(PYTEST_WORKERS),0)
	$(BIN)/pytest $(PYTEST_ARGS)
else
	@carry=$$(mktemp -t bazaar-answers.XXXXXX); trap 'rm -f "$$carry"' EXIT; \
	echo "== make pytest 1/2: $(PYTEST_WORKERS) workers, all but the serial tests"; \
	$(BIN)/pytest -n $(PYTEST_WORKERS) --dist loadgroup --serial=exclude --answers-save="$$carry" $(PYTEST_ARGS); \
	one=$$?; \
	echo "== make pytest 2/2: the serial tests, one process"; \
	$(BIN)/pytest -p no:xdist --serial=only --answers-carry="$$carry" $(PYTEST_ARGS); \
	two=$$?; \
	echo "== make pytest: phase 1 exit $$one, phase 2 exit $$two (5: nothing selected)"; \
	if [ $$one = 5 ] && [ $$two = 5 ]; then exit 5; fi; \
	for rc in $$one $$two; do if [ $$rc != 0 ] && [ $$rc != 5 ]; then exit $$rc; fi; done
endif

test: lint typecheck migrations-check pytest

# Issue 14: the tests that observe the API's error answers, alone; the run fails when a declared error code was
# never answered (tests/contract/answers.py). A full `make test` checks the same when it runs them all.
codes-check: install
	$(BIN)/pytest -q $$($(PY) -c "from tests.contract.answers import OBSERVERS; print(*OBSERVERS)")

# The README's screenshots (docs/screenshots/), rewritten from the Chromium walks; never written by `make test`.
screenshots: install
	BAZAAR_SCREENSHOTS=1 $(BIN)/pytest -m browser -p no:xdist -q bazaar tests

# make bench: every scenario (or BENCH_ARGS="--only ..."), then bench/REPORT.md from all of bench/results/.
bench: install
	$(PY) bench/run.py $(BENCH_ARGS)
	$(PY) bench/report.py

# A/B in one sitting: make bench-ab BASE=<git rev> ONLY=<scenarios> (bench/ab.py; results in bench/results/ab/).
bench-ab: install
	$(PY) bench/ab.py --base $(BASE) --only '$(ONLY)' $(AB_ARGS)

# Only rewrite bench/REPORT.md from the existing bench/results/*.json (no load is run).
bench-report: install
	$(PY) bench/report.py

stack: install
	$(PY) deploy/stack.py up

stack-down:
	$(PY) deploy/stack.py down

# Tests against a running `make stack` (marker `stack`): cross-server freshness, the edge cache, worker, static.
# BAZAAR_STACK_URL / BAZAAR_STACK_APPS default to the ports make stack uses (STACK_PORT, STACK_APP_PORTS).
stack-test: install
	BAZAAR_STACK_URL=$${BAZAAR_STACK_URL:-http://127.0.0.1:$${STACK_PORT:-8080}} \
	BAZAAR_STACK_APPS=$${BAZAAR_STACK_APPS:-$$(echo $${STACK_APP_PORTS:-8001,8002} | sed -E 's#([0-9]+)#http://127.0.0.1:\1#g')} \
	$(BIN)/pytest -m stack -q -p no:xdist $(PYTEST_ARGS) bazaar tests

clean:
	rm -rf $(VENV) staticfiles var/bazaar.sqlite3*
