# The front door: `make repro` builds the course material, `make test` checks the project.
# Both create .venv with the pinned requirements on first use.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Stages run as `python -m stages.<name>`; this makes `python` the one in .venv.
export PATH := $(CURDIR)/$(BIN):$(PATH)

.DEFAULT_GOAL := help

.PHONY: help venv repro test lint format bench clean-venv

help: ## List the targets.
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-11s %s\n", $$1, $$2}'

$(BIN)/activate: requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.lock
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	touch $@

venv: $(BIN)/activate ## Create .venv with the pinned requirements (the other targets do too).

repro: $(BIN)/activate ## Build every artifact (dvc repro): data, model, metrics, figures.
	$(BIN)/dvc repro

test: $(BIN)/activate ## Run the test suite (includes a full build on real MNIST).
	$(BIN)/python -m pytest

lint: $(BIN)/activate ## Check formatting and lint with ruff.
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .

format: $(BIN)/activate ## Reformat the code with ruff.
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: $(BIN)/activate ## Time the lesson's script against the pipeline.
	$(BIN)/python -m bench.run

clean-venv: ## Remove .venv (the next target recreates it).
	rm -rf $(VENV)
