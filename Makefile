# Everything runs from a project-local virtualenv that these targets create and keep up to date.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint format sandbox benchmarks bench clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else "Python 3.10 or newer is needed: make PYTHON=python3.12 ...")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)  ## Start the local sandbox and run the example pipeline DAG through `airflow dags test`.
	$(BIN)/python scripts/demo.py

test: $(STAMP)  ## Lint, then the whole test suite against the local sandbox and a real Airflow.
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

sandbox: $(STAMP)  ## Run the sandbox in the foreground on port 8765.
	$(BIN)/python -m airflow_provider_erpnet.sandbox --port 8765

BENCH_STAMP := $(VENV)/.bench-installed

$(BENCH_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[dev,bench]'
	touch $(BENCH_STAMP)

bench: $(BENCH_STAMP)  ## Every reader side by side on the same pages (benchmarks/README.md), then memory from 10k to 1M rows.
	$(BIN)/python benchmarks/bench.py
	$(BIN)/python benchmarks/memory.py

benchmarks: $(STAMP)
	$(BIN)/python benchmarks/sandbox_speed.py
	$(BIN)/python benchmarks/memory.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .airflow-demo
