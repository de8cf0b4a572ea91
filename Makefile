# Every target creates or refreshes the virtual environment it needs, so each one works on a
# fresh machine with only python3 (3.10+) installed.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test chaos check format lint typecheck bench bench-quick wheel-check clean

$(STAMP): setup.cfg pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

## demo: run the connector against the bundled simulators, state in .demo/
demo: $(STAMP)
	$(BIN)/lapor-connector demo

## test: run the whole test suite
test: $(STAMP)
	$(BIN)/python -m pytest -q

## chaos: the crash-safety suite (real processes killed at random); CHAOS_RUNS=N for more seeds
chaos: $(STAMP)
	$(BIN)/python -m pytest -q -m chaos

## check: format check, lint, type check and tests (what CI runs)
check: $(STAMP)
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/python -m pytest -q

## wheel-check: build the wheel, install it into a clean venv, run the demo from /tmp (CI runs it)
WHEEL_VENV ?= /tmp/lapor-connector-wheel
wheel-check: $(STAMP)
	rm -rf dist build $(WHEEL_VENV) /tmp/lapor-connector-demo
	$(BIN)/python -m pip wheel . --no-deps --quiet --wheel-dir dist
	$(PYTHON) -m venv $(WHEEL_VENV)
	$(WHEEL_VENV)/bin/python -m pip install --quiet dist/*.whl
	! $(WHEEL_VENV)/bin/python -c "import simulators" 2>/dev/null
	cd /tmp && $(WHEEL_VENV)/bin/lapor-connector demo --state-dir /tmp/lapor-connector-demo
	cd /tmp && $(WHEEL_VENV)/bin/lapor-connector init /tmp/lapor-connector-wheel-init --force

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

lint: $(STAMP)
	$(BIN)/ruff check .

typecheck: $(STAMP)
	$(BIN)/mypy

## bench: measure every performance target (P1-P5) against its baseline, ~25 min (not part of the tests)
bench: $(STAMP)
	$(BIN)/python -m bench

## bench-quick: the same benchmarks at smoke-test sizes, one repetition each (~2-3 min)
bench-quick: $(STAMP)
	$(BIN)/python -m bench --quick

clean:
	rm -rf $(VENV) .demo .mypy_cache .pytest_cache .ruff_cache *.egg-info build dist
