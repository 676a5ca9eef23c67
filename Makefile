# kafka-connect-exporter: developer and CI entry points.
# On a fresh machine, `make demo` and `make test` are all you need; everything else is pulled in.

SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
.DELETE_ON_ERROR:
MAKEFLAGS += --no-builtin-rules

PYTHON ?= python3
VENV := .venv
VENV_STAMP := $(VENV)/.kce-installed
# The exporter alone (no dev extra): what `make demo` needs.
RUNTIME_STAMP := $(VENV)/.kce-runtime
# Same default as scripts/install-tools.sh and the Kafka fetcher; an empty value counts as unset.
KAFKA_CONNECT_EXPORTER_CACHE := $(or $(KAFKA_CONNECT_EXPORTER_CACHE),$(HOME)/.cache/kafka-connect-exporter)
KAFKA_FETCH := tests/integration/kafka/fetch.py

# Tests look tools up on PATH: promtool, prometheus and amtool in /usr/bin, the exporter's console script
# and hadolint in the venv; Helm in $KAFKA_CONNECT_EXPORTER_CACHE/bin, where the chart tests look for it.
export KAFKA_CONNECT_EXPORTER_CACHE
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
# Never prompt (CI has no stdin).
export PIP_DISABLE_PIP_VERSION_CHECK := 1
export PIP_NO_INPUT := 1

.PHONY: help venv demo tools kafka lint lint-ruff lint-format lint-mypy lint-docker test test-quick bench clean distclean

help: ## List targets
	@echo "Usage: make <target>"
	@awk 'BEGIN { FS = ":.*## " } /^[a-z][a-zA-Z_-]*:.*## / { printf "  %-10s %s\n", $$1, $$2 }' $(MAKEFILE_LIST)

venv: $(VENV_STAMP) ## Create .venv and install the package (editable) with the dev extra

CHECK_PYTHON = @$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
		|| { echo "error: $(PYTHON) is $$($(PYTHON) --version 2>&1); Python >= 3.11 is required" >&2; exit 1; }

# Re-installs only when pyproject.toml changes; pip's cache keeps re-runs fast.
$(VENV_STAMP): pyproject.toml
	$(CHECK_PYTHON)
	@[ -x $(VENV)/bin/python ] || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --editable '.[dev]'
	@touch $@ $(RUNTIME_STAMP)

# The exporter and its runtime dependencies only (tens of MB, not the dev extra's hundreds); a venv that has the
# dev extra already has all of it.
$(RUNTIME_STAMP): pyproject.toml
	$(CHECK_PYTHON)
	@[ -x $(VENV)/bin/python ] || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --editable .
	@touch $@

demo: $(RUNTIME_STAMP) ## Run the exporter against the embedded simulator and print its URLs (DEMO_ARGS=--help)
	$(VENV)/bin/kafka-connect-exporter demo $(DEMO_ARGS)

tools: ## Install promtool/prometheus/amtool and chromium (apt) and Helm (go install) if missing
	scripts/install-tools.sh

kafka: venv ## Fetch the Apache Kafka jars used by the integration tests
	@[ -f $(KAFKA_FETCH) ] || { echo "error: $(KAFKA_FETCH) does not exist, cannot fetch Kafka jars" >&2; exit 1; }
	$(VENV)/bin/python $(KAFKA_FETCH)

lint: lint-ruff lint-format lint-mypy lint-docker ## ruff, ruff format --check, mypy, hadolint (make -k lint shows all)

lint-ruff: venv
	$(VENV)/bin/ruff check .

lint-format: venv
	$(VENV)/bin/ruff format --check .

lint-mypy: venv
	$(VENV)/bin/mypy

lint-docker: venv
	$(VENV)/bin/hadolint Dockerfile

# pytest-xdist worker processes for `make test`. Most tests wait on real processes and the network, not the CPU,
# so 2 workers on 2 cores halve the run. Tests that share a Kafka cluster, or a module's Prometheus, stay in one
# worker (tests/parallel.py). PYTEST_WORKERS=0 runs the suite serially.
PYTEST_WORKERS ?= 2
PYTEST := $(VENV)/bin/python -m pytest tests -n $(PYTEST_WORKERS) --dist loadscope --no-loadscope-reorder --durations=15

# make test starts a missing Helm's first build (minutes of compiling) before anything else, in the background, so
# it overlaps the rest of the run: the chart tests wait for it, and the recipe waits for it (or stops it) at the end.
.PHONY: tools-background
tools-background:
	scripts/install-tools.sh --helm-background

test: tools-background venv kafka lint ## Everything CI runs: tools, Kafka jars, lint, then the whole test suite
	@VENV=$(VENV) scripts/install-tools.sh --summary
	@trap 'scripts/install-tools.sh --stop-helm; exit 130' INT TERM; rc=0; \
	echo "$(PYTEST)"; $(PYTEST) || rc=$$?; \
	scripts/install-tools.sh --wait-helm || { [ $$rc -ne 0 ] || rc=1; }; \
	exit $$rc

# The unit tests: Python only (no Java, Maven, apt tools or browser), about half a minute of CPU.
QUICK_TESTS := tests/config tests/metrics tests/failures tests/healer tests/connect tests/cloud tests/transport \
	--ignore tests/connect/test_fuzz_parsers.py

test-quick: venv ## Unit tests only: needs nothing but Python (no Java, Maven, apt tools or browser)
	$(VENV)/bin/python -m pytest $(QUICK_TESTS) -n $(PYTEST_WORKERS) -q

.PHONY: soak
soak: venv ## Long soak: churn, faults, 8 scrapers; RSS/fd bounds (SOAK_SECONDS=1800 by default, make test runs 40 s)
	SOAK_SECONDS=$${SOAK_SECONDS:-1800} $(VENV)/bin/python -m pytest tests/daemon/test_soak.py -s -p no:cacheprovider

bench: venv kafka ## Benchmarks at scale, under faults, as Prometheus sees them, sinks from the brokers: bench/*.json (docs/performance.md); BENCH_QUICK=1: short
	@# wrk (Debian) drives the 8 concurrent scrapers the figures in docs/performance.md were taken with.
	@command -v wrk >/dev/null 2>&1 || { apt-get update -q </dev/null && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends wrk </dev/null; } \
		|| echo "warning: wrk not installed; the bench falls back to its Python scraper" >&2
	$(VENV)/bin/python -m bench.run $(BENCH_ARGS)
	@# /metrics latency and event-loop occupancy while a cluster misbehaves (bench/faults.json).
	$(VENV)/bin/python -m bench.faults
	@# What the exporter costs a real Prometheus in each encoding, at 10,000 x 8 (bench/series.json).
	$(VENV)/bin/python -m bench.series $(if $(BENCH_QUICK),--size 1000x4 --scrapes 2 --scrape-interval 5,)
	@# The same with offsets on in current mode, at 1,000 x 8 and 10,000 x 8 (bench/series-offsets-*.json).
	$(VENV)/bin/python -m bench.series --setting "current, offsets on" $(if $(BENCH_QUICK),--size 200x4 --scrapes 2 --scrape-interval 5 --out bench/series-offsets-quick.json,--size 1000x8 --out bench/series-offsets-1000x8.json)
	$(if $(BENCH_QUICK),,$(VENV)/bin/python -m bench.series --setting "current, offsets on" --size 10000x8 --out bench/series-offsets-10000x8.json)
	@# Every sink's offsets refreshed from a real broker's consumer groups against from the workers (bench/sinks.json).
	$(VENV)/bin/python -m bench.sinks $(if $(BENCH_QUICK),--sinks 200 --runs 1 --out bench/sinks-quick.json,)

clean: ## Remove build artefacts and tool caches (keeps .venv and downloaded tools)
	rm -rf build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache .hypothesis
	find . -path ./$(VENV) -prune -o -type d -name __pycache__ -exec rm -rf {} +

distclean: clean ## Also remove .venv (downloaded tools and Kafka jars under $KAFKA_CONNECT_EXPORTER_CACHE stay)
	rm -rf $(VENV)

.PHONY: demo-kafka
demo-kafka: venv kafka ## The exporter against real Apache Kafka Connect (needs Java 17 and Maven); Ctrl-C stops it
	$(VENV)/bin/python -m tests.integration.kafka.demo $(DEMO_ARGS)
