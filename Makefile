# ioc: everyday commands. `make test` and `make demo` work from a fresh clone on a
# fresh Debian 12 machine (root, or passwordless sudo, for the Debian packages).
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup browser stack-up stack-down stack-status test unit unit-py unit-versions lint \
	lock chaos chaos-down bench demo fuzz bench-api

# The virtual environment with the project and its dev tools; redone when
# pyproject.toml changes.
$(STAMP): pyproject.toml tools/pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]' -e tools
	@touch $(STAMP)

# The operator console (console/, npm packages pinned by package-lock.json), bundled into
# ioc/api/console_static/ (git-ignored, packaged). Node and npm come from Debian when
# missing; so does chromium, which the browser tests drive.
APT = $(BIN)/python -c 'import sys; from iocdev.stack.apt import main; main(sys.argv[1:])'
CONSOLE_OUT := ioc/api/console_static/index.html
$(CONSOLE_OUT): $(STAMP) console/package.json console/package-lock.json console/build.mjs $(wildcard console/src/*)
	@command -v npm >/dev/null || $(APT) nodejs npm
	cd console && npm ci --no-audit --no-fund --loglevel=error && npm run build

browser: $(STAMP)
	@$(APT) chromium

setup: $(STAMP) $(CONSOLE_OUT) browser

stack-up: setup
	$(BIN)/ioc stack up

stack-down: setup
	$(BIN)/ioc stack down

stack-status: setup
	$(BIN)/ioc stack status

# Fail fast before any service starts: lint, then the quick unit tests on Python 3.11
# and on the other supported versions (3.12, 3.13); then every other test (the slow unit
# tests among them) against the real local stack: the full suite thus runs on 3.11. The stack keeps running afterwards (the
# next run reuses it) unless CI=true: then it is stopped whatever the outcome, and
# pytest's exit code is kept.
test: lint unit unit-versions
	@set +e; \
	$(BIN)/ioc stack up; rc=$$?; \
	if [ $$rc -eq 0 ]; then $(BIN)/pytest -m "not unit or slow" --durations=25; rc=$$?; fi; \
	if [ "$${CI:-}" = "true" ]; then $(BIN)/ioc stack down; fi; \
	exit $$rc

# The quick check: tests/unit (marked `unit` by tests/conftest.py): pure logic, no
# services, no network, under a minute; its few `slow` tests (simulated days) are left
# to `make test`.
UNIT_MARKERS = unit and not slow
unit: setup
	$(BIN)/pytest -m "$(UNIT_MARKERS)" -q tests/unit

# `make unit` on another Python, in a venv of its own (.venv-<version>, redone when
# pyproject.toml changes): PY=python3.12 or PY=python3.13. An interpreter that is not on
# PATH is taken from pyenv's versions folder.
PY ?= python3.13
PYV = $(patsubst python%,%,$(notdir $(PY)))
PYVENV = .venv-$(PYV)
unit-py:
	@py=$$(command -v $(PY) 2>/dev/null); \
	if [ -z "$$py" ] || ! "$$py" -c '' 2>/dev/null; then \
	  py=$$(ls -d $${PYENV_ROOT:-$$HOME/.pyenv}/versions/$(PYV).*/bin/$(PY) 2>/dev/null \
	        | sort -V | tail -n 1); fi; \
	if [ -z "$$py" ]; then \
	  echo "unit-py: $(PY) not found (on PATH or under pyenv)"; \
	  if [ "$${MISSING_OK:-}" = "1" ]; then exit 0; else exit 1; fi; fi; \
	test -x $(PYVENV)/bin/python || "$$py" -m venv $(PYVENV) || exit 1; \
	if [ ! -f $(PYVENV)/.installed ] || [ pyproject.toml -nt $(PYVENV)/.installed ] \
	    || [ tools/pyproject.toml -nt $(PYVENV)/.installed ]; then \
	  $(PYVENV)/bin/python -m pip install -q --upgrade pip && \
	  $(PYVENV)/bin/python -m pip install -q -e '.[dev]' -e tools && \
	  touch $(PYVENV)/.installed || exit 1; fi; \
	echo "unit tests on $$($(PYVENV)/bin/python --version)"; \
	$(PYVENV)/bin/pytest -m "$(UNIT_MARKERS)" -q -p no:cacheprovider tests/unit

# The unit tests on every other supported Python (CI runs them through `make test`, and a
# missing interpreter fails there; elsewhere it is reported and skipped).
OTHER_PYTHONS ?= python3.12 python3.13
unit-versions:
	@for py in $(OTHER_PYTHONS); do \
	  MISSING_OK=$$([ "$${CI:-}" = "true" ] && echo 0 || echo 1) \
	    $(MAKE) --no-print-directory unit-py PY=$$py || exit 1; done

# ruff, mypy --strict (ioc, streams, geo, alerts, benchmarks, tools/iocdev, tests) and
# the import-linter layer contracts of pyproject.toml.
# The deployed image's hashed lock (Dockerfile: pip install --require-hashes): run after
# changing [project].dependencies in pyproject.toml, and commit requirements.lock.
lock: setup
	$(BIN)/pip install -q uv
	$(BIN)/uv pip compile pyproject.toml --generate-hashes --python-version 3.11 \
	  --python-platform x86_64-manylinux_2_28 --no-header --annotation-style line \
	  -o requirements.lock

lint: setup
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/lint-imports

# Fault injection (docs/chaos.md): every scenario on a stack of its own (.stack-chaos,
# ports 31xxx; the shared stack is never restarted), an exact ledger printed per
# scenario, reports/chaos.json written; exit 1 unless all are exact (about 15 minutes).
# CHAOS_ARGS="--quick" for the CI subset, or scenario names. The chaos stack keeps
# running afterwards (the next run reuses it); `make chaos-down` stops it.
chaos: setup
	$(BIN)/python -m iocdev.chaos --json reports/chaos.json $(CHAOS_ARGS)

# Stop the chaos stack (.stack-chaos, ports 31xxx) and nothing else; runs no scenario.
chaos-down: setup
	$(BIN)/python -m iocdev.chaos --stop

# Every benchmark in one go (about 10 minutes): figures printed, reports/bench.json and
# the tables in BENCHMARKS.md rewritten. BENCH_ARGS=--quick for a short run.
bench: stack-up
	$(BIN)/python -m benchmarks.run $(BENCH_ARGS)

# DEMO_ARGS=--keep-running leaves the API and the console (URL and key printed) up.
demo: stack-up
	$(BIN)/ioc demo $(DEMO_ARGS)

.PHONY: fuzz bench-api bench-gateway bench-mqtt bench-hostile

# Hostile input (issue 24): each adversarial shape at 1, 4, 16, 64 KiB and 1 MiB against
# a valid message of the same size, as cost per byte; exit 1 when a ratio reaches 3.
# The valid baseline is timed again beside each cell (--paired), so a drift of the host's
# speed during the run does not read as a cost. No services needed (a few minutes;
# BENCH_HOSTILE_ARGS="--cpu" for CPU time, "--validator" for the validator alone,
# "--sizes 1024 65536" for fewer sizes).
bench-hostile: setup
	$(BIN)/python -m benchmarks.bench_hostile --paired $(BENCH_HOSTILE_ARGS)

# Fuzz the validator and the batch splitter (hypothesis) for FUZZ_SECONDS (not in CI):
# every element accepted or dead-lettered exactly once, nothing raises, and each
# example's time within a bound linear in its size (issue 24).
FUZZ_SECONDS ?= 300
fuzz: setup
	$(BIN)/python -m tests.fuzz.fuzz_validate --seconds $(FUZZ_SECONDS)

# API load: 20 honest clients at full speed + one abusive client for BENCH_API_SECONDS
# against a real `ioc api` (port 30200) on the local stack; prints p50/p99 and statuses.
BENCH_API_SECONDS ?= 60
bench-api: stack-up
	$(BIN)/python -m benchmarks.bench_api --seconds $(BENCH_API_SECONDS)

# The gateway with one real `ioc worker` behind it (issue 18): 20 clients posting
# 500-event batches for BENCH_API_SECONDS on a fresh pipeline; prints accepted vs stored
# ev/s, the backlog at the end of the load, catch-up time, p50/p99, CPU, load average.
bench-gateway: stack-up
	$(BIN)/python -m benchmarks.bench_api --with-worker --clients 20 --batch 500 \
		--seconds $(BENCH_API_SECONDS)

# MQTT through the bridge beside direct Kafka, in one run (issue 26): QoS 1 messages/s
# into stored rows, and p50/p99 publish -> stored row at BENCH_MQTT_RATE msg/s.
BENCH_MQTT_SECONDS ?= 10
BENCH_MQTT_RATE ?= 5000
bench-mqtt: stack-up
	$(BIN)/python -m benchmarks.bench_mqtt --seconds $(BENCH_MQTT_SECONDS) \
		--rate $(BENCH_MQTT_RATE)
