# fraudwatch — the commands a newcomer and CI run. See README.md.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip
PYTEST := $(BIN)/python -m pytest

# Extras installed for the test suite (the demo needs only `demo`).
TEST_EXTRAS ?= demo,spark,dev

.PHONY: install install-test demo test test-unit test-integration test-e2e test-infra \
        test-ansible lint format bench render services-up services-down clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

## install: create .venv with the `fraudwatch` command (embedded defaults + deep models)
install: $(BIN)/python
	$(PIP) install --quiet -e '.[demo]'

install-test: $(BIN)/python
	$(PIP) install --quiet -e '.[$(TEST_EXTRAS)]'

## demo: generate → score → evaluate → report on embedded defaults at demo scale
demo: install
	$(BIN)/fraudwatch demo

## test: every test tier
test: install-test test-unit test-integration test-e2e test-infra test-ansible

test-unit:
	$(PYTEST) tests/unit

test-integration:
	$(PYTEST) tests/integration

test-e2e:
	$(PYTEST) tests/e2e

test-infra:
	$(PYTEST) tests/infra

test-ansible:
	$(PYTEST) tests/ansible

lint: install-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format:
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

## bench: throughput and wall-time figures at full scale (prints; never asserts)
bench: install-test
	$(BIN)/python -m fraudwatch.bench

clean:
	rm -rf build dist *.egg-info workloads/*.egg-info .pytest_cache .ruff_cache .mypy_cache
