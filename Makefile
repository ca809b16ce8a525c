# Two commands on a fresh machine: `make demo` and `make test`.
# Each installs only what is missing into .venv; torch is pinned to the CPU build
# that lies on this workplace's disk (an unpinned torch pulls a multi-GB CUDA build).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
TORCH ?= torch==2.13.0

.PHONY: demo test test-all lint bench install

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

$(VENV)/.installed: pyproject.toml | $(PY)
	$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install -q "$(TORCH)"
	$(PY) -m pip install -q -e ".[dev,scale]"
	touch $@

install: $(VENV)/.installed

# The main job: ROC-AUC against the number of malicious training targets on synthetic flows
# (Original, SMOTE, Alchemy 3 x N in 5, 10, 20, all; RF, CPU), then its report with p-values
demo: install
	$(VENV)/bin/alchemy experiment=demo
	$(VENV)/bin/alchemy-report multirun/demo-scarcity

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

# two workers: the default run stays near a minute on a 2-core machine
test: install
	$(PY) -m pytest -q -n 2

test-all: install
	$(PY) -m pytest -q -n 2 -m ""

bench: install
	$(PY) experiments/bench_resample.py
