# The two commands the README promises: `make demo` and `make test`. Everything else is for developers.
VENV := .venv
BIN := $(VENV)/bin
SCORER := ../shared/pacemaker-scheduler/score.py

.PHONY: setup demo test lint unit score bench-policy bench-lrm bench-messaging bench-failover soak clean

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

# 3 node processes on loopback: commit latency, throughput, detection time, idle CPU and RSS (last line JSON).
bench-messaging: setup
	$(BIN)/python -m hakeeper.messaging.bench

# Lab, as root: 3 nodes in network namespaces; the node serving a VIP + HTTP group is powered off and the
# time until another node answers through the VIP is measured (default/tuned timers, fencing off/on).
bench-failover: setup
	$(BIN)/hakeeper bench failover

# The long simulation sweep (100,000 seeds; a failing seed prints itself: replay it with
# `python -m hakeeper.sim --replay SEED`). SOAK_JOBS worker processes, one per core by default.
SOAK_JOBS ?= $(shell nproc)
soak: setup
	$(BIN)/python -m hakeeper.sim --seeds 100000 --jobs $(SOAK_JOBS)

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache
