# Two entry points a new user needs: `make kws` (the main job) and `make test`.
# Each creates .venv and installs the pinned requirements on first use.
# `make setup` only installs; then `python recipes/kws.py ...` runs in .venv.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin

.PHONY: setup kws demo test clean

KWS_FLAGS ?= --target_cost=0.5

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: requirements.txt requirements-test.txt | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-test.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $@

setup: $(VENV)/.installed

kws: $(VENV)/.installed
	$(BIN)/python recipes/kws.py $(KWS_FLAGS)

demo: $(VENV)/.installed
	$(BIN)/python recipes/demo.py

test: $(VENV)/.installed
	$(BIN)/python -m pytest -q tests

clean:
	rm -rf $(VENV)
