# Two entry points (README.md): `make run` builds the table on the local database, `make test`
# runs the test suite; `make dev` starts the UI. Each creates .venv and installs the project first.
PYTHON ?= python3
VENV := .venv
export LAB_DB_URL ?= mysql+pymysql://root@127.0.0.1:3306/lab
# One Dagster instance per lab database: dagster_home/<database>_at_<host>_<port> (the URL without
# scheme, account and password), so runs against another database never change what the UI
# shows for this one. `make instance` prints it; DAGSTER_HOME set in the environment wins.
LAB_INSTANCE = $(shell printf '%s' '$(LAB_DB_URL)' | sed -E 's@^[^:]*://([^/]*[@])?([^/?]*)/?([^?]*).*@\3 at \2@; s@[^A-Za-z0-9._-]+@_@g')
export DAGSTER_HOME ?= $(CURDIR)/dagster_home/$(LAB_INSTANCE)

.PHONY: install run audit test test-unit lint format typecheck bench instance
install: $(VENV)/.installed
$(VENV)/.installed: pyproject.toml
	@echo "installing lab_assets and its pinned dependencies into $(VENV) (about a minute, once)"
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -e '.[test]'
	touch $@

# The demo database (the 20 fixed samples) is created only for the default LAB_DB_URL, or for
# another URL's missing database with `make run DEMO=1`. run and audit exit non-zero when a step
# or a check of ERROR severity fails (for cron and CI).
run: install
	mkdir -p $(DAGSTER_HOME)
	$(VENV)/bin/python -m lab_assets.local_lab create-if-missing $(if $(DEMO),--demo)
	$(VENV)/bin/python -m lab_assets.local_lab materialize
	$(VENV)/bin/python -m lab_assets.local_lab show

audit: install
	mkdir -p $(DAGSTER_HOME)
	$(VENV)/bin/python -m lab_assets.local_lab audit

# The UI: webserver and daemon (the daemon runs the sensor and the queued runs) on
# http://127.0.0.1:$(DAGSTER_PORT), on the instance `make run` records its runs in (DAGSTER_HOME, one per lab database),
# so the UI shows what `make run` built. `make dev DAGSTER_PORT=3001` for another port.
DAGSTER_PORT ?= 3000
.PHONY: dev
dev: install
	mkdir -p $(DAGSTER_HOME)
	$(VENV)/bin/python -m lab_assets.local_lab create-if-missing $(if $(DEMO),--demo)
	exec $(VENV)/bin/python -c "$$RESTORE_SIGINT" $(VENV)/bin/dagster dev -w workspace.yaml -h 127.0.0.1 -p $(DAGSTER_PORT)

# A shell starts a background job (`make dev &`) with SIGINT ignored, and dagster dev, its
# webserver and daemon map SIGTERM to SIGINT's handler: they would ignore SIGTERM too. SIGINT's
# default is restored before dagster dev starts, and `exec` leaves no shell in between, so
# `kill <make's pid>` (make passes SIGTERM on to its child, dagster dev) or Ctrl-C stops
# webserver, daemon and code servers in order (README, "The UI").
export RESTORE_SIGINT = import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); os.execv(sys.argv[1], sys.argv[1:])

# The instance `make run` and `make dev` use for LAB_DB_URL (see DAGSTER_HOME above).
instance:
	@echo $(DAGSTER_HOME)

test: install
	$(VENV)/bin/pytest

# The tests that need no database server (not marked `integration`): under a minute.
test-unit: install
	$(VENV)/bin/pytest -m "not integration"

# ruff (lint + format check, 120 columns) and pyright (standard), configured in pyproject.toml.
lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

# Rewrites the files: applies ruff's safe fixes, formats, then lists what is left to fix by hand.
format: install
	$(VENV)/bin/ruff check --fix --exit-zero --quiet .
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check .

typecheck: install
	$(VENV)/bin/pyright

bench: install
	$(VENV)/bin/python bench/bench.py
