# Two commands do all the set-up: `make train` and `make test` create .venv when missing,
# install requirements.txt when it changed since the last install, then do their job.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-requirements
BENCH_STAMP := $(VENV)/.installed-requirements-bench
# `make test PYTEST_ARGS="-k csv"` narrows the run; -n 2 uses both cores.
PYTEST_ARGS ?=
# `make train` trains a fresh run of a task each time: TASK picks it (DEFAULT_TASK, the task of
# config/default.json, unless given; config/<task>.json is the others' template),
# EXP/RUN/CONFIG can be overridden.
DEFAULT_TASK := digits
TASK ?= $(DEFAULT_TASK)
CONFIG ?= $(if $(filter $(DEFAULT_TASK),$(TASK)),default,$(TASK))
EXP ?= example
STAMP_NOW := $(shell date +%Y%m%d-%H%M%S)
RUN ?= $(if $(filter $(DEFAULT_TASK),$(TASK)),run,$(TASK))-$(STAMP_NOW)
TRAIN_ARGS ?=

.PHONY: train test bench venv clean-venv

venv: $(STAMP)

$(PY):
	$(PYTHON) -m venv $(VENV)

# The stamp is newer than requirements.txt after a successful install, so an unchanged
# requirements.txt skips pip entirely.
$(STAMP): requirements.txt | $(PY)
	$(PY) -m pip install --disable-pip-version-check -q -r requirements.txt
	touch $(STAMP)

train: $(STAMP)
	$(PY) src/01_initialize.py -e $(EXP) -r $(RUN) -c $(CONFIG)
	$(PY) src/02_train.py -e $(EXP) -r $(RUN) $(TRAIN_ARGS)

# Bytecode is cached for the tests even where PYTHONDONTWRITEBYTECODE is set (some containers set
# it): without the cache, each test worker and each pytest a test starts rewrites the asserts of
# every test module again (about 4 s of CPU each), and every process recompiles src/. Two workers
# share two cores: one thread each (OMP_NUM_THREADS=1) instead of torch's two per process.
test: $(STAMP)
	PYTHONDONTWRITEBYTECODE= OMP_NUM_THREADS=1 $(PY) -m pytest -n 2 --dist worksteal --durations=10 $(PYTEST_ARGS)

# The benchmarks' anchors (Lightning) install only for `make bench`.
$(BENCH_STAMP): requirements-bench.txt requirements.txt $(STAMP)
	$(PY) -m pip install --disable-pip-version-check -q -r requirements-bench.txt
	touch $(BENCH_STAMP)

bench: $(BENCH_STAMP)
	@set -e; for f in benchmarks/bench_*.py; do \
		echo "=== $$f"; PYTHONPATH=src $(PY) $$f; \
	done

clean-venv:
	rm -rf $(VENV)
