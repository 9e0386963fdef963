# Two commands on a fresh machine (Python 3.11 + make): `make demo` and `make test`.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
SANDBOX_PORT ?= 5055
AIRFLOW_PORT ?= 8080

export PYTHONPATH := $(CURDIR)
export AIRFLOW__CORE__LOAD_EXAMPLES := False

.PHONY: install test lint demo demo-remediate airflow cluster cluster-down sandbox bench bench-access bench-scale constraints clean

# constraints.txt (scripts/freeze_constraints.py) holds the runtime versions the tests ran with; the image uses it too.
$(STAMP): requirements.txt requirements-dev.txt constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -r requirements.txt -r requirements-dev.txt --constraint constraints.txt
	touch $(STAMP)

install: $(STAMP)  ## create .venv and install the pinned runtime + dev requirements

test: install  ## run the whole test suite
	$(BIN)/python -m pytest -q

lint: install  ## ruff (incl. Airflow AIR rules); mypy on include/; cfn-lint + parliament on deploy/; the Athena template is current
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/python -m scripts.lint_templates
	$(BIN)/python -m scripts.athena_template --check

demo: install  ## emulator up, org scan DAG end to end with `airflow dags test`, fleet summary, emulator down
	$(BIN)/python scripts/demo.py --port $(SANDBOX_PORT)

demo-remediate: install  ## `make demo`, then the remediation DAG for real on 6 nodes, before/after figures
	$(BIN)/python scripts/demo.py --port $(SANDBOX_PORT) --remediate

airflow: install  ## airflow standalone (UI on localhost:$(AIRFLOW_PORT)) wired to the emulator; prints the login
	$(BIN)/python scripts/airflow_local.py --port $(SANDBOX_PORT) --ui-port $(AIRFLOW_PORT)

cluster: install  ## CeleryExecutor Airflow (PostgreSQL, Redis, 2 workers) wired to the emulator; UI on :$${CLUSTER_API_PORT:-8090}
	$(BIN)/python scripts/cluster.py up

cluster-down:  ## stop exactly the processes `make cluster` started
	$(BIN)/python scripts/cluster.py down

sandbox: install  ## the local AWS emulator in the foreground on 127.0.0.1:$(SANDBOX_PORT)
	$(BIN)/python -m sandbox serve --host 127.0.0.1 --port $(SANDBOX_PORT) --profile small

bench: install  ## transform + writer throughput and memory at 10k / 100k / 1M patch rows
	$(BIN)/python bench/bench_transform.py

bench-access: install  ## AWS access on the emulator: per-extra-account cost, wait calls per poke, Security Hub memory (before/after)
	$(BIN)/python bench/bench_accounts.py
	$(BIN)/python bench/bench_wait.py
	$(BIN)/python bench/bench_securityhub.py

bench-scale: install  ## scan DAG end to end on the local cluster at the emulator's `large` org: per step and per AWS action vs floor
	$(BIN)/python bench/bench_scale.py --profile $${BENCH_SCALE_PROFILE:-large} --json artifacts/bench-scale.json

constraints: install  ## regenerate constraints.txt from requirements.txt and the venv
	$(BIN)/python scripts/freeze_constraints.py

clean:  ## stops a running `make cluster` first: its data and ledger live in artifacts/
	-test -x $(BIN)/python && $(BIN)/python scripts/cluster.py down
	rm -rf airflow_home artifacts .pytest_cache
