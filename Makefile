# Exporter: every command a developer or CI needs. Fresh machine → `make run` or `make test`.
SHELL := /bin/bash
PYTHON ?= python3
TOOLS := .tools
UV := $(TOOLS)/bin/uv
VENV := .venv
PY := $(VENV)/bin/python
KAFKAJS := tests/integration/kafkajs
# uv uses this machine's Python; it never downloads one.
export UV_PYTHON_DOWNLOADS := never

.PHONY: install run stop servers test test-unit test-browser browser-deps lint format asyncapi fuzz chaos bench bench-api bench-scheduler bench-render bench-render-stage bench-notify bench-ingest bench-compact bench-metrics

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --disable-pip-version-check uv==0.13.9

# The pinned environment from uv.lock: services, local servers and dev tools; KafkaJS from its lock.
install: $(UV) $(KAFKAJS)/node_modules/.package-lock.json
	$(UV) sync --frozen --python $(PYTHON) --quiet

# KafkaJS (Node.js) for the Kafka client compatibility test, tests/integration/test_kafka_clients.py.
$(KAFKAJS)/node_modules/.package-lock.json: $(KAFKAJS)/package-lock.json
	npm ci --prefix $(KAFKAJS) --no-audit --no-fund --silent

# Local servers, all five services, one demo export end to end; Ctrl-C (or `make stop`) stops all.
run: install
	$(PY) -m exporter.local run

stop: install
	$(PY) -m exporter.local down

# Only the local servers (Kafka, S3, MongoDB, SMTP), for running services by hand.
servers: install
	$(PY) -m exporter.local up

# Lint and type checks, then unit, e2e, browser (Debian's chromium, installed if missing), security
# and integration tests against servers the session starts.
test: lint browser-deps
	$(PY) -m pytest --durations=25

# Debian's chromium (and its driver) for the browser tests; Playwright never downloads a browser.
browser-deps:
	@command -v chromium >/dev/null || { apt-get update -qq && apt-get install -y -qq chromium chromium-driver; }

# The whole browser suite (tests/browser) in headless Chromium against the running system;
# `make test` runs its short part.
test-browser: install browser-deps
	EXPORTER_BROWSER_FULL=1 $(PY) -m pytest tests/browser

test-unit: install
	$(PY) -m pytest tests/unit

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy libs services tests

# Long fuzzing: schemathesis (1,000 examples per operation, stateful links) and hostile records on
# every consumed topic, against fresh servers and the five services; FUZZ_ARGS="--seed 7 --messages 500".
FUZZ_ARGS ?=
fuzz: install
	$(PY) -m tests.fuzz $(FUZZ_ARGS)

# The whole system under faults: servers, the five services (two schedulers, renderers, notifiers),
# a workload and faults drawn from the seed, then every invariant checked; the last line sums it
# up and the exit status says whether nothing was lost, duplicated or stuck (README: Chaos).
CHAOS_ARGS ?=
chaos: install
	$(PY) -m tests.chaos $(CHAOS_ARGS)

format: install
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

# The AsyncAPI document of every topic, checked in as docs/asyncapi.json and .yaml
# (tests/unit/test_asyncapi.py keeps them equal to what the code generates).
asyncapi: install
	$(PY) -m exporter.contracts.asyncapi docs

# Benchmarks: each starts its own servers and prints its figures, the last line against the targets.
bench: bench-api bench-scheduler bench-render bench-render-stage bench-notify bench-ingest bench-compact bench-metrics

bench-api: install
	$(PY) -m tests.benchmarks.bench_api

bench-scheduler: install
	$(PY) -m tests.benchmarks.bench_scheduler

# Exports end to end (segments in MongoDB → renderer → object store) beside the raw scan of the same
# segments: CSV and JSON Lines of 5M readings, a 15-minute average of 10M, the other formats, and the
# old one-document-per-reading layout as the reference; BENCH_RENDER_ARGS="--memory" adds the
# 200k- vs 20M-row CSV memory check, "--rows 1000000 --decimated-rows 1000000" a shorter run.
BENCH_RENDER_ARGS ?=
bench-render: install
	$(PY) -m tests.benchmarks.bench_render $(BENCH_RENDER_ARGS)

# Rendering alone (rows in memory → bytes), per format, beside polars and a plain csv loop.
bench-render-stage: install
	$(PY) -m tests.benchmarks.render_stage

bench-notify: install
	$(PY) -m tests.benchmarks.bench_notify

bench-ingest: install
	$(PY) -m tests.benchmarks.bench_ingest

# Compaction beside ingest of small segments (1,000 series, 100,000 records/s): readings/s merged
# and the backlog over time; BENCH_COMPACT_ARGS="--seconds 20 --series 200" for a short run.
BENCH_COMPACT_ARGS ?=
bench-compact: install
	$(PY) -m tests.benchmarks.bench_compact $(BENCH_COMPACT_ARGS)

# What the metrics cost: request-api creates and gets and a CSV export end to end, with metrics on,
# off and off again (the noise) on the same servers, by CPU per request or row;
# BENCH_METRICS_ARGS="--bursts 8 --rounds 1 --rows 200000" for a shorter run.
BENCH_METRICS_ARGS ?=
bench-metrics: install
	$(PY) -m tests.benchmarks.bench_metrics $(BENCH_METRICS_ARGS)
