# Two entry points a new user needs: `make kws` (the main job) and `make test`.
# Each creates .venv and installs the package with its extras on first use.
# `make setup` only installs; then `python recipes/kws.py ...` runs in .venv.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin

.PHONY: setup kws sketch demo test lint check-wheel clean

KWS_FLAGS ?= --target_cost=0.5

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# pyproject.toml declares the ranges the package accepts; requirements.txt pins the tested setup
# (every package at the version the tests passed with), which is what gets installed here.
$(VENV)/.installed: pyproject.toml requirements.txt | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $@

setup: $(VENV)/.installed

kws: $(VENV)/.installed
	$(BIN)/python recipes/kws.py $(KWS_FLAGS)

# The image example: SWR, fine-tune all and the classifier alone on synthetic sketches.
sketch: $(VENV)/.installed
	$(BIN)/python recipes/sketch.py --target_cost=0.1

demo: $(VENV)/.installed
	$(BIN)/python recipes/demo.py

# One pytest-xdist worker per core of the 2-core CI machine; set PYTEST_WORKERS=0 to run in one process.
PYTEST_WORKERS ?= 2

test: $(VENV)/.installed
	$(BIN)/python -m pytest -q -n $(PYTEST_WORKERS) tests --durations=30

lint: $(VENV)/.installed
	$(BIN)/python .ci/check_requirements.py
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# Builds the wheel and installs it with the `kws` extra into a fresh virtual
# environment outside the checkout; see .ci/check_wheel.sh.
check-wheel: $(VENV)/.installed
	bash .ci/check_wheel.sh $(PYTHON)

clean:
	rm -rf $(VENV)
