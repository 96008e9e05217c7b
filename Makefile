# Orchestrion: the verbs people use are `make run`, `make test`, `make lint` and `make bench`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: run test lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

# Stamp files so that repeated runs do not reinstall; they are redone when pyproject.toml changes.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[dev,embeddings]'
	touch $@ $(VENV)/.installed

## Set up and start the server with embedded defaults (SQLite, in-process queue, embedded LLM).
run: $(VENV)/.installed
	$(BIN)/orchestrion serve

## Set up and run the whole test suite (pytest exits non-zero when no test ran).
test: $(VENV)/.installed-dev
	$(BIN)/pytest

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy src

## Benchmarks against bare-httpx floors and peers (LangGraph, LiteLLM in bench/.venv-peers): W1, then
## the provider router's per-call overhead and its behaviour under faults, then the intelligence
## simulator (selector regret, prediction quality), the WebSocket fan-out, the parallel engine's
## 1,000-item batch and memory search (installs the `embeddings` extra); see BENCHMARKS.md.
bench: $(VENV)/.installed
	PYTHON=$(PYTHON) bash bench/setup_peers.sh
	$(BIN)/python bench/w1.py
	$(BIN)/python bench/router_overhead.py
	$(BIN)/python bench/router_faults.py
	$(BIN)/python bench/intelligence/simulate.py --seeds 1 2 3 4 5
	$(BIN)/python bench/ws.py
	$(BIN)/python bench/parallel.py
	$(BIN)/pip install -q -e '.[embeddings]'
	$(BIN)/python bench/recall.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache build dist src/*.egg-info
