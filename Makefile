# cmt-collect: the two commands a newcomer needs are `make run` and `make test`.
# Both create/update the local virtual environment in .venv themselves: `make run` installs only
# what the running stack needs (the runtime and the `local` extra), `make test` adds the test and
# lint toolchain (the `dev` extra). Versions come from uv.lock, generated from pyproject.toml.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin

# uv, pinned, is bootstrapped with the venv's own pip into $(VENV)/.uv. It installs from PyPI
# through its cache (~/.cache/uv); with UV_OFFLINE=1 only from that cache. It never downloads a
# Python of its own: the venv's interpreter is $(PYTHON).
UV_VERSION = 0.13.9
UV_HOME    = $(VENV)/.uv
UV         = $(UV_HOME)/bin/uv
UV_STAMP   = $(UV_HOME)/uv-$(UV_VERSION).dist-info
DEV_STAMP  = $(VENV)/.dev-installed
export UV_PYTHON_DOWNLOADS = never
export UV_PROJECT_ENVIRONMENT = $(VENV)
# src/requirements.txt (read by `sam build`): the runtime dependencies of uv.lock, nothing else.
EXPORT = $(UV) export --quiet --locked --no-emit-project --no-hashes --no-header
EXPORT_HEADER = "\# Generated from uv.lock by \`make lock\`; do not edit (runtime dependencies only)."

.PHONY: install install-local run test lint lock check-lock typecheck unit bench demo clean browser \
	web-form

$(UV_STAMP):
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade \
		--target $(UV_HOME) uv==$(UV_VERSION)

# The running stack: runtime + `local`, no bytecode compiled up front (Python writes it for what
# is imported). Inexact, so a venv that `make test` filled stays as it is.
install-local: $(UV_STAMP)
	@$(UV) sync --quiet --locked --inexact --extra local

# Everything (`dev` includes `local`), exactly as locked and compiled to bytecode up front (as
# pip does), so test subprocesses and the benchmarks' fresh interpreters never compile sources.
install: $(DEV_STAMP)

$(DEV_STAMP): pyproject.toml uv.lock $(UV_STAMP)
	@$(UV) sync --quiet --locked --extra dev --compile-bytecode
	@touch $@

run: install-local
	$(BIN)/cmt-collect serve

demo: install-local
	$(BIN)/cmt-collect demo

# After adding or changing a dependency in pyproject.toml: re-resolve and regenerate.
lock: $(UV_STAMP)
	$(UV) lock
	@{ echo $(EXPORT_HEADER); $(EXPORT); } > src/requirements.txt

# uv.lock and src/requirements.txt must be what pyproject.toml and uv.lock give today.
check-lock: $(UV_STAMP)
	@$(UV) lock --check --quiet || { echo "uv.lock is out of step with pyproject.toml: run make lock"; exit 1; }
	@{ echo $(EXPORT_HEADER); $(EXPORT); } | diff -u src/requirements.txt - \
		|| { echo "src/requirements.txt is out of step with uv.lock: run make lock"; exit 1; }

lint: install check-lock
	$(BIN)/lint-imports
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/cfn-lint template.yaml

typecheck: install
	$(BIN)/mypy

unit: install
	$(BIN)/pytest -q tests/unit

# The e-mail, figure and front-end checks open Debian's Chromium (tests/e2e/*browser*.py);
# install it when missing (apt, as root). No test tool downloads a browser of its own.
CHROMIUM = /usr/bin/chromium
browser:
	@test -x $(CHROMIUM) || { \
	  if [ "$$(id -u)" != 0 ]; then \
	    echo "Chromium is missing: run 'make browser' as root (apt-get install chromium)" >&2; \
	    exit 1; \
	  fi; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; }

# The reference front end (examples/web-form) serves LHC-Forms from its own node_modules:
# `npm ci` from its package-lock.json (exact versions, integrity-checked; its .npmrc runs no
# install scripts), again only when the lock changes. Node.js and npm come with the machine;
# installed with apt when missing (as root).
WEB_FORM       = examples/web-form
WEB_FORM_STAMP = $(WEB_FORM)/node_modules/.package-lock.json
web-form: $(WEB_FORM_STAMP)

$(WEB_FORM_STAMP): $(WEB_FORM)/package.json $(WEB_FORM)/package-lock.json $(WEB_FORM)/.npmrc
	@command -v npm >/dev/null || { \
	  if [ "$$(id -u)" != 0 ]; then \
	    echo "npm is missing: install Node.js and npm (apt-get install nodejs npm)" >&2; \
	    exit 1; \
	  fi; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm; }
	cd $(WEB_FORM) && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

# one worker per core; a test file stays on one worker (its moto world and fixtures with it)
test: lint typecheck browser web-form
	$(BIN)/pytest -q -n auto --dist loadfile

bench: install
	$(BIN)/python benchmarks/run.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis build *.egg-info src/*.egg-info \
		$(WEB_FORM)/node_modules
