# The two commands a newcomer needs: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cksum requirements.txt | cut -d' ' -f1)

.PHONY: run test browser env clean-venv

$(STAMP): requirements.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -r requirements.txt
	@rm -f $(VENV)/.installed-*; touch $@

browser:
	@bash deploy/ensure-browser.sh

env: $(STAMP)
	@$(PY) deploy/make_env.py

## Start the API on http://127.0.0.1:8080 plus the workers; Ctrl-C stops everything.
run: $(STAMP) browser env
	@$(PY) deploy/run_local.py

## Run the whole test suite, real-browser tests included.
test: $(STAMP) browser
	$(PY) -m pytest -q

clean-venv:
	rm -rf $(VENV)

.PHONY: backup
## A consistent copy of the live queue into backups/ (safe while everything runs).
backup: $(STAMP)
	$(PY) deploy/backup.py
