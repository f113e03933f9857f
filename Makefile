# Everything runs from a project-local virtualenv that these targets create and keep up to date.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

# `make compat`: the lowest Airflow pyproject.toml accepts (apache-airflow>=X), in its own virtualenv.
COMPAT_AIRFLOW ?= $(shell sed -n 's/.*"apache-airflow>=\([0-9.]*\)".*/\1/p' pyproject.toml)
COMPAT_VENV := .venv-compat-$(COMPAT_AIRFLOW)

.PHONY: demo test lint format sandbox benchmarks bench compat clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else "Python 3.10 or newer is needed: make PYTHON=python3.12 ...")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)  ## Start the local sandbox and run the example pipeline DAG through `airflow dags test`.
	$(BIN)/python scripts/demo.py

# Two workers on a 2-core machine: much of the suite is Airflow and sandbox processes, and one
# worker leaves a core idle while it waits on them. Each test file runs whole on one worker.
TEST_WORKERS ?= 2

test: $(STAMP)  ## Lint, then the whole test suite against the local sandbox and a real Airflow.
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/pytest -n $(TEST_WORKERS) --dist loadfile --durations=25

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

SANDBOX_PORT ?= 8765

sandbox: $(STAMP)  ## Run the sandbox in the foreground on port 8765 (SANDBOX_PORT=0: any free port).
	$(BIN)/python -m airflow_provider_erpnet.sandbox --port $(SANDBOX_PORT)

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

# Old Airflow releases declare no upper bounds that today's libraries respect (3.2.0 breaks with
# fastapi 0.163 / cadwyn 9); Airflow's docs install with its constraint files, which live on
# GitHub. compat-constraints.txt pins the few libraries that matter, for offline runs;
# COMPAT_CONSTRAINTS=https://raw.githubusercontent.com/apache/airflow/constraints-3.2.0/constraints-3.11.txt
# uses Airflow's own.
COMPAT_CONSTRAINTS ?= compat-constraints.txt

compat:  ## The lowest supported Airflow (or COMPAT_AIRFLOW=x.y.z) in its own venv: provider-info, hook, operator and DAG tests.
	$(PYTHON) -m venv $(COMPAT_VENV)
	$(COMPAT_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(COMPAT_VENV)/bin/python -m pip install --quiet --constraint $(COMPAT_CONSTRAINTS) \
		"apache-airflow==$(COMPAT_AIRFLOW)" -e '.[dev]'
	$(COMPAT_VENV)/bin/python -c 'import airflow; print("Testing against Airflow", airflow.__version__)'
	$(COMPAT_VENV)/bin/pytest tests/test_provider_info.py tests/hooks tests/operators tests/dags

clean:
	rm -rf $(VENV) .venv-compat-* .pytest_cache .ruff_cache .airflow-demo .airflow-first
