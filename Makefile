# The two commands in README.md are the contract: `make run` and `make test`.
# Both install exactly what requirements/*.lock name (with hashes); `make lock` changes that on purpose.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8765
PIP := $(BIN)/python -m pip --quiet --disable-pip-version-check
LOCK_FLAGS := --quiet --generate-hashes --allow-unsafe --strip-extras --no-emit-index-url \
	--no-emit-find-links --build-deps-for editable

.PHONY: run test lint typecheck pytest bench soak server tui clean lock test-oldest test-latest

$(BIN)/python:
	$(PY) -m venv $(VENV)

# --no-deps: the lock already names every package; --no-build-isolation: the editable install
# builds with the locked setuptools instead of whatever is newest that day.
$(VENV)/.installed: requirements/run.lock pyproject.toml | $(BIN)/python
	$(PIP) install --require-hashes --no-deps -r requirements/run.lock
	$(PIP) install --no-deps --no-build-isolation -e .
	$(PIP) check
	touch $@

$(VENV)/.installed-dev: requirements/dev.lock pyproject.toml | $(BIN)/python
	$(PIP) install --require-hashes --no-deps -r requirements/dev.lock
	$(PIP) install --no-deps --no-build-isolation -e .
	$(PIP) check
	touch $@ $(VENV)/.installed

run: $(VENV)/.installed
	@$(BIN)/python -m securechat.server.ensure --host $(HOST) --port $(PORT)
	$(BIN)/securechat-tui --server ws://$(HOST):$(PORT)

server: $(VENV)/.installed
	$(BIN)/securechat-server run --host $(HOST) --port $(PORT)

test: $(VENV)/.installed-dev
	$(BIN)/ruff check src tests bench tools
	$(BIN)/ruff format --check src tests bench tools
	$(BIN)/mypy
	$(BIN)/pytest -q

# Refresh the lock to today's newest releases that pyproject.toml allows (README, Development).
lock: $(VENV)/.installed-dev
	$(BIN)/pip-compile $(LOCK_FLAGS) --upgrade --extra dev --extra cluster --build-deps-for wheel \
		-o requirements/dev.lock pyproject.toml
	$(BIN)/pip-compile $(LOCK_FLAGS) --upgrade -c requirements/dev.lock \
		-o requirements/run.lock pyproject.toml

# The lowest release of every direct dependency that pyproject.toml allows.
test-oldest:
	rm -rf .venv-oldest
	$(PY) -m venv .venv-oldest
	$(PY) tools/oldest_constraints.py pyproject.toml > .venv-oldest/constraints.txt
	.venv-oldest/bin/python -m pip install --quiet -c .venv-oldest/constraints.txt setuptools
	.venv-oldest/bin/python -m pip install --quiet -c .venv-oldest/constraints.txt \
		--no-build-isolation -e '.[dev,cluster]'
	.venv-oldest/bin/python -m pip check
	.venv-oldest/bin/pytest -q --deselect tests/tui/test_snapshots.py

# What `pip install securechat` gets today: nothing pinned.
test-latest:
	rm -rf .venv-latest
	$(PY) -m venv .venv-latest
	.venv-latest/bin/python -m pip install --quiet --upgrade pip setuptools
	.venv-latest/bin/python -m pip install --quiet --upgrade -e '.[dev,cluster]'
	.venv-latest/bin/python -m pip check
	.venv-latest/bin/ruff check src tests bench tools
	.venv-latest/bin/mypy
	.venv-latest/bin/pytest -q

bench: $(VENV)/.installed-dev
	$(BIN)/python -m bench

soak: $(VENV)/.installed-dev
	$(BIN)/pytest -q -m slow

clean:
	rm -rf $(VENV) .venv-oldest .venv-latest .mypy_cache .pytest_cache .ruff_cache
