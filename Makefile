# cmt-collect: the two commands a newcomer needs are `make run` and `make test`.
# Both create/update the local virtual environment in .venv themselves.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
STAMP   = $(VENV)/.installed-stamp

.PHONY: install run test lint typecheck unit bench demo clean browser

install: $(STAMP)

$(STAMP): pyproject.toml requirements.lock
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c requirements.lock -e '.[dev]'
	@touch $(STAMP)

run: install
	$(BIN)/cmt-collect serve

demo: install
	$(BIN)/cmt-collect demo

lint: install
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/cfn-lint template.yaml

typecheck: install
	$(BIN)/mypy

unit: install
	$(BIN)/pytest -q tests/unit

# The e-mail and figure checks open Debian's Chromium (tests/e2e/test_mail_and_figures_in_browser.py);
# install it when missing (apt, as root). No test tool downloads a browser of its own.
CHROMIUM = /usr/bin/chromium
browser:
	@test -x $(CHROMIUM) || { \
	  if [ "$$(id -u)" != 0 ]; then \
	    echo "Chromium is missing: run 'make browser' as root (apt-get install chromium)" >&2; \
	    exit 1; \
	  fi; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; }

test: lint typecheck browser
	$(BIN)/pytest -q

bench: install
	$(BIN)/python benchmarks/run.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis build *.egg-info src/*.egg-info
