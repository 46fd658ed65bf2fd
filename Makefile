# fraudwatch — the commands a newcomer and CI run. See README.md.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip
PYTEST := $(BIN)/python -m pytest
# A skip fails the run unless its reason is on the short allow-list in tests/skip_policy.py
# (a missing extra or data set must not turn CI green). Not in the Ansible tier: its tests
# have no skips and run in pytest-xdist workers.
SKIP_POLICY := -p tests.skip_policy
# The infra tier has its own virtualenv: checkov pins many packages of its own.
INFRA_VENV ?= .venv-infra
# Extras installed for the test suite (the demo needs only `demo`).
TEST_EXTRAS ?= demo,spark,dashboards,cluster,dev

.PHONY: install install-test fetch demo test test-unit test-integration test-e2e test-infra \
        test-ansible test-airflow test-k8s lint format bench bench-quality render services-up services-down clean

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
test: install-test test-unit test-integration test-e2e test-infra test-k8s test-airflow test-ansible

test-unit:
	$(PYTEST) $(SKIP_POLICY) tests/unit

## fetch: server jars (Maven Central), Spark connectors, FerretDB (Go module proxy) into caches
fetch: install-test
	$(BIN)/python -m tests.servers fetch

test-integration: fetch
	$(PYTEST) $(SKIP_POLICY) tests/integration

test-e2e:
	$(PYTEST) $(SKIP_POLICY) tests/e2e

$(INFRA_VENV)/bin/python: tests/infra/requirements.txt infra/requirements.txt infra/requirements-test.txt
	$(PYTHON) -m venv $(INFRA_VENV)
	$(INFRA_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(INFRA_VENV)/bin/python -m pip install --quiet -r tests/infra/requirements.txt
	touch $@

test-infra: $(INFRA_VENV)/bin/python
	bash tests/infra/gitops/install_kustomize.sh
	$(INFRA_VENV)/bin/python -m pytest $(SKIP_POLICY) tests/infra

# The k8s tier: a real control plane on 127.0.0.1 (etcd from Debian's etcd-server, kube-apiserver
# from the shared Kubernetes kit, checksums verified; tests/servers/kubernetes.py) with the
# operators' real CRDs; docs/operations/kubernetes.md has what it covers and its timings.
test-k8s: $(INFRA_VENV)/bin/python
	bash tests/infra/gitops/install_kustomize.sh
	$(INFRA_VENV)/bin/python -m pytest $(SKIP_POLICY) --durations=10 tests/k8s

# The Airflow tier runs in Airflow's own virtualenv (Airflow pins many packages).
AIRFLOW_VENV ?= .airflow-venv
$(AIRFLOW_VENV)/bin/airflow: tests/airflow/setup_airflow_venv.sh pyproject.toml
	AIRFLOW_VENV=$(AIRFLOW_VENV) bash tests/airflow/setup_airflow_venv.sh

test-airflow: $(AIRFLOW_VENV)/bin/airflow
	$(AIRFLOW_VENV)/bin/python -m pytest $(SKIP_POLICY) tests/airflow

# The Ansible tier: its own virtualenv, podman + debootstrap from Debian, the host image, the
# signed internal package repository and the air-gapped artefact mirror built by the script.
# Seven modules (docs/operations/bare-metal.md, "How this is tested"): lint + samples, the
# three-host Kafka cluster over TLS with its rolling upgrade, Spark + Airflow, the MongoDB
# stand-in with the intervention service's state in it, the single-node platform, Ceph's S3
# gateway and the Elasticsearch stand-in, three modules at a time (pytest-xdist, one module per
# worker, the longest first: most of a converge is waiting on services, not CPU). Measured:
# 60 tests in 18m25s wall on 2 cores, image, repository and mirror already built.
ANSIBLE_VENV ?= .venv-ansible
test-ansible:
	bash tests/ansible/install-host-tools.sh $(ANSIBLE_VENV)
	$(ANSIBLE_VENV)/bin/python -m pytest -n 3 --dist loadfile --durations=15 \
	  tests/ansible/test_kafka_cluster.py tests/ansible/test_analytics.py \
	  tests/ansible/test_mongodb.py tests/ansible/test_single_node.py \
	  tests/ansible/test_ceph_gateway.py tests/ansible/test_elasticsearch.py \
	  tests/ansible/test_sample_inventories.py

## services-up / services-down: the real servers for development, on 127.0.0.1
services-up: install-test
	$(BIN)/python -m tests.servers up

services-down:
	$(BIN)/python -m tests.servers down

## render: regenerate the committed dashboards, alert rules and Tableau data source
render: install-test
	$(BIN)/python dashboards/render.py

lint: install-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format:
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

## bench: throughput and wall-time figures at full scale (prints; never asserts). The streaming
## figures use the development Kafka and Elasticsearch (left running: `make services-down`).
bench: fetch
	$(BIN)/python -m tests.servers up kafka elasticsearch
	FRAUDWATCH_SPARK_IVY=$${FRAUDWATCH_SPARK_IVY:-$(CURDIR)/.cache/artifacts/spark-ivy} \
		$(BIN)/python -m fraudwatch.bench

## bench-quality: our models and the ensemble beside PyOD's peers on the public labelled sets
## (../shared/data/calibration and scikit-learn's bundled data); prints a Markdown table.
bench-quality: install-test
	$(PIP) install --quiet -e '.[bench]'
	$(BIN)/python -m fraudwatch.bench.quality --repeats 3 --constructed

clean:
	rm -rf build dist *.egg-info workloads/*.egg-info .pytest_cache .ruff_cache .mypy_cache
