# The two commands a newcomer needs: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cksum requirements.txt | cut -d' ' -f1)

.PHONY: run test lint browser postgres env clean-venv

$(STAMP): requirements.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -r requirements.txt
	@rm -f $(VENV)/.installed-*; touch $@

browser:
	@bash deploy/ensure-browser.sh

postgres:
	@bash deploy/ensure-postgres.sh

env: $(STAMP)
	@$(PY) deploy/make_env.py

## Start the API on http://127.0.0.1:8080 plus the workers; Ctrl-C stops everything.
run: $(STAMP) browser env
	@$(PY) deploy/run_local.py

## Run the whole test suite, real-browser tests included, the queue's on SQLite and PostgreSQL.
test: $(STAMP) browser postgres
	$(PY) -m pytest -q

LINT_STAMP := $(VENV)/.lint-$(shell cksum requirements-lint.txt | cut -d' ' -f1)

$(LINT_STAMP): requirements-lint.txt $(STAMP)
	$(PY) -m pip install -q --disable-pip-version-check -r requirements-lint.txt
	@rm -f $(VENV)/.lint-*; touch $@

## Lint (ruff), format check (ruff format) and type check (mypy) of the product packages.
lint: $(LINT_STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

clean-venv:
	rm -rf $(VENV)

.PHONY: backup
## A consistent copy of the live queue into backups/ (safe while everything runs).
backup: $(STAMP)
	$(PY) deploy/backup.py

.PHONY: bench
## Measure the product against its floor and alternatives; writes docs/BENCHMARKS.md (~20 min).
## `make bench BENCH_ARGS=--quick` for a short run (~3 min). Not part of `make test`.
bench: $(STAMP) browser postgres
	$(PY) -m pip install -q --disable-pip-version-check -r bench/requirements.txt
	BENCH_VIA_MAKE="$(BENCH_ARGS)" $(PY) -m bench.run $(BENCH_ARGS)

## Save a PNG of every /app screen, desktop (1280) and phone (390) wide, in docs/screenshots/.
.PHONY: screenshots
screenshots: $(STAMP) browser
	$(PY) tests/screenshots.py docs/screenshots

.PHONY: chaos
## Kill, log out, cut off and restart everything mid-job, then check every message arrived once
## (~15 min; docs/RELIABILITY.md). `make chaos CHAOS_ARGS=--quick` for a short run.
chaos: $(STAMP) browser postgres
	$(PY) -m tests.chaos $(CHAOS_ARGS)

.PHONY: fuzz
## Fuzz the live API with schemathesis against api/openapi.json: no 5xx, answers as described.
fuzz: $(STAMP)
	$(PY) -m pip install -q --disable-pip-version-check "schemathesis>=4,<5"
	$(PY) tests/fuzz_api.py $(FUZZ_EXAMPLES)
