# Two commands on a fresh machine: `make run` and `make test`.
# Only Python 3.11, make and git are assumed; uv is bootstrapped from PyPI into
# .tools/ and builds .venv/ exactly from uv.lock.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
UV_VERSION := 0.13.9
TOOLS := .tools
UV := $(TOOLS)/bin/uv
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin

export UV_PYTHON_DOWNLOADS := never
export UV_PROJECT_ENVIRONMENT := $(VENV)
export DVC_NO_ANALYTICS := 1
export PATH := $(BIN):$(PATH)

.PHONY: setup run test lint format clean help browser

help:
	@echo "make run    - create .venv from uv.lock and run the whole pipeline (dvc repro) on the sample"
	@echo "make test   - create .venv and run the test suite"
	@echo "make setup  - create .venv only"
	@echo "make lint   - ruff and mypy"
	@echo "make browser - install Chromium (Debian, needs root) for the report's render test"

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/python -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

$(VENV)/.synced: uv.lock pyproject.toml | $(UV)
	$(UV) sync --frozen --python $(PYTHON)
	@touch $@

setup: $(VENV)/.synced

# DVC ends every run that ran a stage with "Use `dvc push` to send your updates to
# remote storage", even when each output came out the same as in dvc.lock (a fresh
# clone reruns every stage). With no DVC remote configured there is nowhere to push,
# so that line is left out; `git status` says whether anything changed.
run: SHELL := /bin/bash
run: setup
	@set -o pipefail; if [ -n "$$($(BIN)/dvc remote list)" ]; then $(BIN)/dvc repro; else \
		PYTHONUNBUFFERED=1 $(BIN)/dvc repro | { grep -v --line-buffered '^Use `dvc push`' || [ $$? -eq 1 ]; }; fi

test: setup
	$(BIN)/pytest -n 2 --dist loadfile

lint: setup
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/mypy

format: setup
	$(BIN)/ruff format src tests benchmarks
	$(BIN)/ruff check --fix src tests benchmarks

# The report test renders the HTML in headless Chromium; without it the test skips
# (and fails when CI is set). Debian/Ubuntu only; run as root or via sudo.
browser:
	@command -v chromium >/dev/null 2>&1 || { \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }
	@chromium --version

clean:
	rm -rf $(VENV) $(TOOLS)
