# engage — the commands README.md names.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test lint fuzz chaos mutate bench schema migrate demo clean install install-test

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test,dev]'
	touch $(VENV)/.installed $@

install: $(VENV)/.installed
install-test: $(VENV)/.installed-test

## run: set up, migrate the embedded SQLite database, load demo data once, serve GraphiQL
run: install
	$(BIN)/engage migrate
	$(BIN)/engage demo --once
	@echo "GraphiQL: http://$(HOST):$(PORT)/graphql"
	$(BIN)/engage serve --host $(HOST) --port $(PORT)

## test: set up and run the whole suite (PostgreSQL + Redis + embedded SQLite), then lint
test: install-test
	$(BIN)/pytest -q
	$(MAKE) --no-print-directory lint

## lint: ruff, mypy and the import contracts of .importlinter (one-way dependencies)
lint: install-test
	$(BIN)/ruff check app schema resolvers jobs tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports

## fuzz: the schema-driven fuzzing of tests/platform/test_fuzz.py with a long, random budget
fuzz: install-test
	ENGAGE_FUZZ_EXAMPLES=$${ENGAGE_FUZZ_EXAMPLES:-60} ENGAGE_FUZZ_RANDOM=1 \
		$(BIN)/pytest -q tests/platform/test_fuzz.py

## chaos: the fault-injection test with 10,000 orders (kills processes, restarts the shared Redis)
chaos: install-test
	ENGAGE_CHAOS_ORDERS=$${ENGAGE_CHAOS_ORDERS:-10000} $(BIN)/pytest -q -s tests/e2e/test_fault_injection.py

## mutate: mutation testing of the business rules with mutmut ([tool.mutmut] in pyproject.toml,
## docs/testing.md) on embedded SQLite; results are cached in mutants/ (rm -rf mutants: afresh)
mutate: install-test
	ENGAGE_TEST_BACKENDS=sqlite $(BIN)/mutmut run --max-children $${MUTATE_CHILDREN:-2}
	$(BIN)/mutmut results

bench: install-test
	$(BIN)/python -m bench

schema: install
	$(BIN)/engage export-schema

migrate: install
	$(BIN)/engage migrate

demo: install
	$(BIN)/engage demo

clean:
	rm -rf $(VENV) engage.db engage.db-shm engage.db-wal .pytest_cache .mypy_cache .ruff_cache
