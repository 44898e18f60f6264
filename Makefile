# DTS Explorer: `make run` launches the app on the embedded default, `make test` runs the suite.
# Each target creates .venv and installs what it needs when it is missing or out of date.
PYTHON ?= python3.11
VENV   := .venv
PY     := $(VENV)/bin/python
export GRADIO_ANALYTICS_ENABLED := False
export NUMBA_CACHE_DIR ?= $(CURDIR)/.numba_cache

.PHONY: run test lint bench clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

$(VENV)/.runtime-stamp: requirements.txt pyproject.toml | $(PY)
	$(PY) -m pip install -q -r requirements.txt
	$(PY) -m pip install -q --no-deps -e .
	touch $@

$(VENV)/.dev-stamp: requirements-dev.txt $(VENV)/.runtime-stamp
	$(PY) -m pip install -q -r requirements-dev.txt
	touch $@

run: $(VENV)/.runtime-stamp
	$(PY) app.py

test: $(VENV)/.dev-stamp
	HF_HUB_OFFLINE=1 $(PY) -m pytest

# Layering (import-linter contracts in pyproject.toml: no cycles, ui → viz → search →
# obstacles → verifiers → backends → core) and ruff (lint + format).
lint: $(VENV)/.dev-stamp
	$(VENV)/bin/lint-imports
	$(VENV)/bin/ruff check dts_app tests benchmarks docs app.py
	$(VENV)/bin/ruff format --check dts_app app.py

bench: $(VENV)/.runtime-stamp
	@for f in benchmarks/*.py; do echo "== $$f"; $(PY) $$f || exit 1; done

clean:
	rm -rf $(VENV) .numba_cache .pytest_cache
