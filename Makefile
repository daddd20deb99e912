# ioc: everyday commands. `make test` and `make demo` work from a fresh clone on a
# fresh Debian 12 machine (root, or passwordless sudo, for the Debian packages).
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup browser stack-up stack-down stack-status test lint lock chaos bench demo fuzz bench-api

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

# Lint first (fail fast: seconds, before any service starts), then all tests against
# the real local stack. The stack keeps running afterwards (the next run reuses it)
# unless CI=true: then it is stopped whatever the outcome, and pytest's exit code is kept.
test: lint
	@set +e; \
	$(BIN)/ioc stack up; rc=$$?; \
	if [ $$rc -eq 0 ]; then $(BIN)/pytest; rc=$$?; fi; \
	if [ "$${CI:-}" = "true" ]; then $(BIN)/ioc stack down; fi; \
	exit $$rc

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
# CHAOS_ARGS="--quick" for the CI subset, or scenario names; --down stops that stack.
chaos: setup
	$(BIN)/python -m iocdev.chaos --json reports/chaos.json $(CHAOS_ARGS)

# Every benchmark in one go (about 10 minutes): figures printed, reports/bench.json and
# the tables in BENCHMARKS.md rewritten. BENCH_ARGS=--quick for a short run.
bench: stack-up
	$(BIN)/python -m benchmarks.run $(BENCH_ARGS)

# DEMO_ARGS=--keep-running leaves the API and the console (URL and key printed) up.
demo: stack-up
	$(BIN)/ioc demo $(DEMO_ARGS)

.PHONY: fuzz bench-api bench-gateway bench-hostile

# Hostile input (issue 24): each adversarial shape at 1, 4, 16, 64 KiB and 1 MiB against
# a valid message of the same size, as cost per byte; exit 1 when a ratio reaches 3.
# No services needed (a few minutes; BENCH_HOSTILE_ARGS="--validator" for the validator
# alone, "--sizes 1024 65536" for fewer sizes).
bench-hostile: setup
	$(BIN)/python -m benchmarks.bench_hostile $(BENCH_HOSTILE_ARGS)

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
