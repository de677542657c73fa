# The front door: `make repro` builds the course material, `make test` checks the project.
# Both create .venv with the pinned requirements on first use, with python3 or $(PYTHON).

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Stages run as `python -m stages.<name>`; this makes `python` the one in .venv.
export PATH := $(CURDIR)/$(BIN):$(PATH)
# Python keeps each module it compiles (in __pycache__), unless PYTHONDONTWRITEBYTECODE is set,
# as it is on the machines this project is built on: then every stage that imports TensorFlow
# compiles it from source again (`import keras`: 9.7 s instead of 3.8 s here). Compiling every
# package at install instead (uv's --compile-bytecode) cost 18 s more than it saved in a first
# build, so the modules a stage imports are compiled once, the first time.
unexport PYTHONDONTWRITEBYTECODE

.DEFAULT_GOAL := help

.PHONY: help venv repro test lint format bench platforms lock clean-venv

help: ## List the targets.
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-11s %s\n", $$1, $$2}'

# The installer, pinned in requirements-dev.lock like every other tool.
UV_PIN := $(shell grep -m1 '^uv==' requirements-dev.lock)
PYTHON_CHECK := import sys; v = sys.version_info[:2]; sys.exit(0 if (3, 11) <= v <= (3, 13) else \
	f"error: $(PYTHON) is Python {v[0]}.{v[1]}; this project needs Python 3.11, 3.12 or 3.13 (choose one: PYTHON=python3.12 make repro)")

# pip only brings uv into the new venv; uv then installs the two locks exactly (about ten
# times faster than pip on the same lock) and nothing else.
$(BIN)/activate: requirements.lock requirements-dev.lock
	@command -v $(PYTHON) >/dev/null || { echo "error: $(PYTHON) not found; this project needs Python 3.11, 3.12 or 3.13 (choose one: PYTHON=python3.12 make repro)" >&2; exit 1; }
	@$(PYTHON) -c '$(PYTHON_CHECK)'
	rm -rf $(VENV)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check $(UV_PIN)
	$(BIN)/uv pip sync --quiet --python $(BIN)/python requirements.lock requirements-dev.lock
	$(BIN)/uv pip install --quiet --python $(BIN)/python --no-deps --no-build-isolation -e .
	touch $@

venv: $(BIN)/activate ## Create .venv with the pinned requirements (the other targets do too).

repro: $(BIN)/activate ## Build every artifact (dvc repro): data, model, metrics, figures.
	$(BIN)/dvc repro

# One worker per core (pytest-xdist), each taking a whole test file at a time, since a file's
# tests change one copied build in turn. On 2 cores here: two workers 433 s against one 674 s
# (before compiled modules were kept); then two workers 286 s against three 312 s. The files
# go out in the order tests/conftest.py gives them, the longest first, not xdist's own (the
# files with the most tests first), so that the short files even out the workers at the end.
test: $(BIN)/activate ## Run the test suite (includes a full build on real MNIST).
	$(BIN)/python -m pytest --numprocesses auto --dist loadfile --no-loadscope-reorder

lint: $(BIN)/activate ## Check formatting and lint with ruff.
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .

format: $(BIN)/activate ## Reformat the code with ruff.
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: $(BIN)/activate ## Time the lesson's script against the pipeline.
	$(BIN)/python -m bench.run

platforms: $(BIN)/activate ## Check that the locks install on every platform and Python listed in the README.
	$(BIN)/python -m tools.platforms

lock: $(BIN)/activate ## Recompile both locks from requirements*.in, for every platform at once.
	$(BIN)/uv pip compile --quiet --universal --python-version 3.11 requirements.in -o requirements.lock
	$(BIN)/uv pip compile --quiet --universal --python-version 3.11 requirements-dev.in -o requirements-dev.lock

clean-venv: ## Remove .venv (the next target recreates it).
	rm -rf $(VENV)
