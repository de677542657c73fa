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

.PHONY: help venv browser repro restore test lint site format probe bench platforms pythons lock clean-venv

help: ## List the targets.
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-11s %s\n", $$1, $$2}'

# The installer, pinned in requirements-dev.lock like every other tool.
UV_PIN := $(shell grep -m1 '^uv==' requirements-dev.lock)
PYTHON_CHECK := import sys; v = sys.version_info[:2]; sys.exit(0 if (3, 11) <= v <= (3, 13) else \
	f"error: $(PYTHON) is Python {v[0]}.{v[1]}; this project needs Python 3.11, 3.12 or 3.13 (choose one: PYTHON=python3.12 make repro)")

# pip only brings uv into the new venv; uv then installs the two locks exactly (about ten
# times faster than pip on the same lock) and nothing else.
$(BIN)/activate: requirements.lock requirements-dev.lock pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "error: $(PYTHON) not found; this project needs Python 3.11, 3.12 or 3.13 (choose one: PYTHON=python3.12 make repro)" >&2; exit 1; }
	@$(PYTHON) -c '$(PYTHON_CHECK)'
	rm -rf $(VENV)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check $(UV_PIN)
	$(BIN)/uv pip sync --quiet --python $(BIN)/python requirements.lock requirements-dev.lock
	$(BIN)/uv pip install --quiet --python $(BIN)/python --no-deps --no-build-isolation -e .
	touch $@

venv: $(BIN)/activate ## Create .venv with the pinned requirements (the other targets do too).

# The stages whose upstream stages are built run at once, as many as their threads fit in the
# cores this process may use (tools/schedule.py, each stage as `dvc repro --single-item`);
# JOBS=N fills N cores, and JOBS=1 is DVC's own serial build, `dvc repro`. Either leaves the
# same files and dvc.lock.
repro: $(BIN)/activate ## Build every artifact (dvc repro): data, model, metrics, figures.
	$(BIN)/python -m tools.schedule$(if $(JOBS), --jobs $(JOBS))
	@echo "The course's home page: $(CURDIR)/reports/index.html (open it in a browser; nothing else is needed)"

# The build from the DVC remote, as both CI workflows restore it before they build: `dvc pull`
# from the default remote (else the first one .dvc/config lists), with the keys DVC's S3 client
# reads from the environment, AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, never written to a
# file. Without a remote or without keys nothing is pulled; what the remote lacks is left for
# `make repro` (--allow-missing). docs/publishing.md says where CI's keys come from.
restore: $(BIN)/activate ## Pull the build from the DVC remote, its keys from the environment (CI).
	@if ! remote="$$($(BIN)/dvc remote default 2>/dev/null)"; then \
		remote="$$($(BIN)/dvc remote list | awk 'NR == 1 { print $$1 }')"; \
	fi; \
	if [ -z "$$remote" ]; then \
		echo "::notice::No DVC remote in .dvc/config: nothing restored, the build is made here."; \
	elif [ -z "$$AWS_ACCESS_KEY_ID" ] || [ -z "$$AWS_SECRET_ACCESS_KEY" ]; then \
		echo "::notice::No keys for the DVC remote $$remote (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY): nothing restored, the build is made here."; \
	else \
		echo "Restoring the build from the DVC remote $$remote"; \
		$(BIN)/dvc pull --remote "$$remote" --allow-missing; \
	fi

# Chromium for the browser tests (the course page in tests/test_page.py and test_try_it.py, and
# `make bench`). Playwright's own build comes first, as Playwright intends; where its download
# server cannot be reached, the system's `chromium` is used, installed with apt-get if it is
# missing and apt-get is there (on Debian). The tests only look for one (tests/helpers.py) and
# never install anything. The one found is noted in .venv/browser: the next run only checks that
# the file is still there (a new .venv, as after a change of the locks, looks again).
BROWSER_STAMP := $(VENV)/browser
PLAYWRIGHT_LOG := $(VENV)/playwright-install.log
APT_LOG := $(VENV)/apt-chromium.log
# Where Playwright keeps its Chromium (the same question tests/helpers.py asks).
PLAYWRIGHT_CHROMIUM := from playwright.sync_api import sync_playwright; \
	p = sync_playwright().start(); print(p.chromium.executable_path); p.stop()
# A download that hangs rather than fails must not hold `make test` for long.
PLAYWRIGHT_TIMEOUT := 120

browser: $(BIN)/activate ## Get Chromium for the browser tests: Playwright's, else the system's.
	@if [ -x "$$(cat $(BROWSER_STAMP) 2>/dev/null)" ]; then exit 0; fi; \
	limit=$$(command -v timeout >/dev/null && echo "timeout $(PLAYWRIGHT_TIMEOUT)"); \
	echo "Getting Playwright's Chromium for the browser tests: playwright install chromium (log: $(PLAYWRIGHT_LOG))"; \
	if $$limit $(BIN)/playwright install chromium >$(PLAYWRIGHT_LOG) 2>&1; then \
		found=$$($(BIN)/python -c '$(PLAYWRIGHT_CHROMIUM)'); \
		"$$found" --version >/dev/null 2>&1 || { echo "error: Playwright's Chromium ($$found) does not start (system libraries missing?); '$(BIN)/playwright install-deps chromium' installs them" >&2; exit 1; }; \
	else \
		echo "playwright install chromium failed (download server unreachable?); using the system's chromium instead"; \
		why="no chromium on PATH and no apt-get to install Debian's"; \
		if ! command -v chromium >/dev/null && command -v apt-get >/dev/null; then \
			echo "Installing Debian's chromium with apt-get, since no chromium is on PATH (log: $(APT_LOG))"; \
			why="apt-get install chromium failed (see $(APT_LOG))"; \
			{ DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
			  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; } >$(APT_LOG) 2>&1; \
		fi; \
		found=$$(command -v chromium); \
		if [ -n "$$found" ] && ! "$$found" --version >/dev/null 2>&1; then why="$$found does not start"; found=; fi; \
		[ -n "$$found" ] || { echo "error: no Chromium for the browser tests: playwright install chromium failed (see $(PLAYWRIGHT_LOG)), and $$why" >&2; exit 1; }; \
	fi; \
	echo "$$found" >$(BROWSER_STAMP); \
	echo "Chromium for the browser tests: $$found"

# One worker per core (pytest-xdist), each taking a whole test file at a time, since a file's
# tests change one copied build in turn. On 2 cores here: two workers 433 s against one 674 s
# (before compiled modules were kept); then two workers 286 s against three 312 s. The files
# go out in the order tests/conftest.py gives them, the longest first, not xdist's own (the
# files with the most tests first), so that the short files even out the workers at the end.
test: $(BIN)/activate browser ## Run the test suite (includes a full build on real MNIST).
	$(BIN)/python -m pytest --numprocesses auto --dist loadfile --no-loadscope-reorder

# The workflows are checked offline: against GitHub's workflow schema (vendored in
# check-jsonschema), and by zizmor's offline audits with its strictest persona, honouring no
# ignore comment, so that a finding cannot be silenced in the workflow itself.
WORKFLOWS := .github/workflows/*.yml

lint: $(BIN)/activate ## Check formatting and lint with ruff; check the CI workflows offline.
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/check-jsonschema --builtin-schema vendor.github-workflows $(WORKFLOWS)
	$(BIN)/zizmor --offline --persona auditor --no-ignores --no-progress $(WORKFLOWS)

format: $(BIN)/activate ## Reformat the code with ruff.
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# The student site, from the build in reports/ and one allow-list (tools/site.py): what the
# publishing workflow puts on GitHub Pages, to look at first. With GITHUB_REPOSITORY=owner/name
# set, as in GitHub Actions, the page gets an "Open in Colab" link.
site: $(BIN)/activate ## Assemble the student site in _site/ from the build (after make repro).
	$(BIN)/python -m tools.site --out _site

# Fingerprints of the first training steps on this CPU (tools/probe.py), stored in
# docs/fingerprints/ under a name for the CPU and compared with every stored CPU's: a CPU that
# would train other bytes than dvc.lock records fails here in seconds, naming the network and
# the first step that differs (docs/reproducibility.md).
probe: $(BIN)/activate ## Check that this CPU trains the bytes of the CPUs in docs/fingerprints.
	$(BIN)/dvc repro prepare
	$(BIN)/python -m tools.probe --train-set data/prepared/train --test-set data/prepared/test \
		--fingerprints docs/fingerprints

bench: $(BIN)/activate browser ## Time the lesson's script against the pipeline.
	$(BIN)/python -m bench.run

platforms: $(BIN)/activate ## Check that the locks install on every platform and Python listed in the README.
	$(BIN)/python -m tools.platforms

# `make pythons ARGS=--list` only lists the interpreters found; `ARGS="--only 3.12"` runs one.
pythons: ## Run make repro and make test in a clone of HEAD with each of Python 3.11, 3.12, 3.13.
	python3 tools/pythons.py $(ARGS)

lock: $(BIN)/activate ## Recompile both locks from requirements*.in, for every platform at once.
	$(BIN)/uv pip compile --quiet --universal --python-version 3.11 requirements.in -o requirements.lock
	$(BIN)/uv pip compile --quiet --universal --python-version 3.11 requirements-dev.in -o requirements-dev.lock

clean-venv: ## Remove .venv (the next target recreates it).
	rm -rf $(VENV)

# Build on several machines (docs/several-machines.md): workers build the units and push them
# to the DVC remote, and the assembling machine pulls them and builds the rest.
.PHONY: units unit assemble

units: $(BIN)/activate ## List the work units (python -m tools.units list --json for a CI matrix).
	$(BIN)/python -m tools.units list

unit: $(BIN)/activate ## Build one unit and push it to the remote: make unit NAME=cnn.
	$(BIN)/python -m tools.units run $(NAME) --pull --push

assemble: $(BIN)/activate ## Pull every unit from the remote, then build the rest (trains nothing).
	$(BIN)/python -m tools.units assemble
