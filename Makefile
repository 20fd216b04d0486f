# The two commands the README promises: `make demo` and `make test`. Everything else is for developers.
VENV := .venv
BIN := $(VENV)/bin
SCORER := ../shared/pacemaker-scheduler/score.py

.PHONY: setup demo test lint unit score bench-policy bench-lrm soak clean

setup:
	scripts/setup.sh

demo: setup
	$(BIN)/hakeeper demo

lint: setup
	$(BIN)/ruff check src tests
	$(BIN)/mypy

unit: setup
	$(BIN)/pytest -q -n 2

test: lint unit

score: setup
	$(BIN)/python scripts/score.py

bench-policy: setup
	$(BIN)/hakeeper bench policy

bench-lrm: setup
	$(BIN)/python -m hakeeper.lrm.bench

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache
