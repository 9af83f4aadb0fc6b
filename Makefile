# monitorkit: `make run` to start monitoring, `make test` to check everything. `make help` lists targets.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
DB     ?= data/monitorkit.duckdb
PORT   ?= 5006
STAMP  := $(VENV)/.installed

.DEFAULT_GOAL := help
.PHONY: help install run collect test notebooks lint bench docs strip-notebooks demo screenshots clean

help:  ## List the targets with what they do.
	@grep -E '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "} {printf "  %-16s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)  ## Create .venv and install monitorkit with its dev tools.

run: $(STAMP)  ## Install, then own $(DB): collect, evaluate rules and serve the dashboard (Ctrl-C stops cleanly).
	$(BIN)/monitorkit serve --db $(DB) --port $(PORT)

collect: $(STAMP)  ## Own $(DB) and collect without the dashboard.
	$(BIN)/monitorkit collect --db $(DB)

NBVAL  := -q -p no:cacheprovider --timeout=300 --nbval-lax --nbval-current-env --nbval-sanitize-with notebooks/sanitize.cfg

test: $(STAMP)  ## Install, then run every test, notebooks included.
	$(BIN)/python -m pytest tests -q -p no:cacheprovider --timeout=600
	$(BIN)/python -m pytest notebooks $(NBVAL)

notebooks: $(STAMP)  ## Run the notebooks under nbval (checked cells must match their saved outputs).
	$(BIN)/python -m pytest notebooks $(NBVAL)

strip-notebooks: $(STAMP)  ## Re-run the notebooks and keep saved outputs only in their checked cells.
	$(BIN)/python notebooks/strip_outputs.py --execute

demo: $(STAMP)  ## Write data/demo.duckdb: 3 days, 3 hosts, six documented incidents.
	$(BIN)/monitorkit demo --db data/demo.duckdb --force

lint: $(STAMP)  ## ruff and mypy over the package, the tests and the benchmarks; no import cycle.
	$(BIN)/ruff check monitorkit tests benchmarks tools
	$(BIN)/mypy monitorkit tests benchmarks tools
	$(BIN)/python tools/import_cycles.py monitorkit | tee /dev/stderr | grep -q '^0 cycle groups'

environment.yml: pyproject.toml  ## Regenerate the conda environment file from pyproject.toml.
	$(BIN)/python tools/environment.py > environment.yml

bench: $(STAMP)  ## Run the benchmark scripts and print their figures (peers: apt-get install prometheus-node-exporter).
	$(BIN)/python -m pip install --quiet -e '.[bench]'
	$(BIN)/python benchmarks/store_bench.py
	$(BIN)/python benchmarks/instrument_bench.py
	$(BIN)/python benchmarks/collector_bench.py --seconds 60
	$(BIN)/python benchmarks/alert_bench.py

docs: $(STAMP)  ## Regenerate generated docs (metric table, CLI reference).
	$(BIN)/python -m monitorkit.catalog > docs/metrics.md
	$(BIN)/python tests/test_docs.py > docs/cli.md

screenshots: $(STAMP)  ## Regenerate docs/images/ from the real app (needs Debian's chromium).
	$(BIN)/python docs/screenshots.py

clean:  ## Remove the virtual environment and caches (keeps data/).
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
