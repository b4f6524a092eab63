# The two commands in README.md are the contract: `make run` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8765

.PHONY: run test lint typecheck pytest bench soak server tui clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@ $(VENV)/.installed

run: $(VENV)/.installed
	@$(BIN)/python -m securechat.server.ensure --host $(HOST) --port $(PORT)
	$(BIN)/securechat-tui --server ws://$(HOST):$(PORT)

server: $(VENV)/.installed
	$(BIN)/securechat-server run --host $(HOST) --port $(PORT)

test: $(VENV)/.installed-dev
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy
	$(BIN)/pytest -q

bench: $(VENV)/.installed-dev
	$(BIN)/python -m bench

soak: $(VENV)/.installed-dev
	$(BIN)/pytest -q -m slow

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache
