# monitorkit: `make run` to start monitoring, `make test` to check everything. `make help` lists targets.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
DB     ?= data/monitorkit.duckdb
PORT   ?= 5006
STAMP  := $(VENV)/.installed

.DEFAULT_GOAL := help
.PHONY: help install run collect test test-fast notebooks lint bench docs strip-notebooks clean

help:  ## List the targets with what they do.
	@grep -E '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "} {printf "  %-16s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)  ## Create .venv and install monitorkit with its dev tools.

run: $(STAMP)  ## Install, then own $(DB): collect every second (Ctrl-C stops cleanly).
	$(BIN)/monitorkit collect --db $(DB)

test: $(STAMP)  ## Install, then run every test, notebooks included.
	$(BIN)/python -m pytest tests -q -p no:cacheprovider --timeout=600

lint: $(STAMP)  ## ruff and mypy over the package.
	$(BIN)/ruff check monitorkit tests benchmarks
	$(BIN)/mypy monitorkit

bench: $(STAMP)  ## Run the benchmark scripts and print their figures.
	$(BIN)/python benchmarks/store_bench.py

docs: $(STAMP)  ## Regenerate generated docs (metric table).
	$(BIN)/python -m monitorkit.metrics_registry > docs/metrics.md

clean:  ## Remove the virtual environment and caches (keeps data/).
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
