# The two commands of the README's quick start, and the plain steps behind them.
#   make run    # .venv + install + the whole default DAG (snakemake --cores all)
#   make test   # .venv + test deps + the test suite (what .ci/run calls)
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# torch first and pinned: on this kind of machine 2.13.0 is a CPU build on local disk; an
# unpinned torch would pull a multi-GB CUDA build. Any torch >= 2.4 works for users.
TORCH ?= torch==2.13.0
CORES ?= all
PRESET ?=

.PHONY: run test install test-install dry-run lint clean-results

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet "$(TORCH)"
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.test-installed: $(VENV)/.installed
	$(BIN)/pip install --quiet -e ".[test]"
	touch $@

install: $(VENV)/.installed

test-install: $(VENV)/.test-installed

# An initialised DVC repo is part of the project; `dvc init` only if a copy lost it.
.dvc/config:
	$(BIN)/dvc init --quiet $(if $(wildcard .git),,--no-scm)

run: install .dvc/config
	$(if $(PRESET),$(BIN)/polyrefusal preset $(PRESET),)
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/snakemake --cores $(CORES)

dry-run: install
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/snakemake --cores $(CORES) -n

lint: install
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/snakemake --lint

test: test-install
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/python -m pytest $(PYTEST_ARGS)

clean-results:
	rm -rf results logs .snakemake/metadata .snakemake/incomplete
