"""The Airflow tier: runs with .airflow-venv's python (tests/airflow/setup_airflow_venv.sh).

Airflow reads its settings when first imported, so they are set here, before any test module
imports it: a throwaway AIRFLOW_HOME with its SQLite metadata database, no example DAGs, and
the project's dags folder. The database is migrated once per session."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DAGS_FOLDER = REPO / "workloads" / "fraudwatch" / "pipelines" / "dags"
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))  # tests.servers: the real servers the integration tier uses

# The real servers are started (or reused) as in the integration tier; the Elasticsearch
# fixture is the one both tiers use (tests/servers/fixtures.py).
from tests.servers.fixtures import RunningServer, running_server  # noqa: E402
from tests.servers.fixtures import elasticsearch_server as elasticsearch_server  # noqa: E402

_AIRFLOW_HOME = Path(tempfile.mkdtemp(prefix="fraudwatch-airflow-"))
os.environ.update(
    {
        "AIRFLOW_HOME": str(_AIRFLOW_HOME),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS_FOLDER),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{_AIRFLOW_HOME / 'airflow.db'}",
    }
)
os.environ.pop("FRAUDWATCH_PIPELINE_CONFIG", None)
os.environ.pop("FRAUDWATCH_PIPELINE_CONFIG_JSON", None)


@pytest.fixture(scope="session", autouse=True)
def airflow_db() -> Path:
    subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"],
        check=True,
        capture_output=True,
        timeout=300,
    )
    return _AIRFLOW_HOME


def small_config(home: Path, **overrides) -> dict:
    """A local-mode configuration at test scale: iforest only (no PyTorch), no retries."""
    config = {
        "mode": "local",
        "home": str(home),
        "models": ["iforest"],
        "fit_users": 500,
        "retries": 0,
        "demo": {"users": 1_000, "transactions": 10_000, "seed": 7, "fraud_rate": 0.02},
    }
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(config.get(key), dict):
            config[key] = {**config[key], **value}
        else:
            config[key] = value
    return config


def load_dag(dag_file: str, config: dict, tmp_path: Path, monkeypatch):
    """Import a DAG file afresh with `config` as its $FRAUDWATCH_PIPELINE_CONFIG."""
    path = tmp_path / f"pipeline-{uuid.uuid4().hex[:8]}.json"
    path.write_text(json.dumps(config))
    monkeypatch.setenv("FRAUDWATCH_PIPELINE_CONFIG", str(path))
    spec = importlib.util.spec_from_file_location(
        f"dag_{uuid.uuid4().hex[:8]}", DAGS_FOLDER / dag_file
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.dag


@pytest.fixture(scope="session")
def kafka_server(tmp_path_factory) -> Iterator[RunningServer]:
    """A real Kafka broker (KRaft); `.url` is the bootstrap server."""
    yield from running_server("kafka", tmp_path_factory)


@pytest.fixture(scope="session")
def ceph_s3(tmp_path_factory) -> Iterator[dict[str, str]]:
    """A real Ceph radosgw (tests/servers/ceph.py) with a fresh S3 user: its settings
    (AWS_ENDPOINT_URL_S3, AWS_ACCESS_KEY_ID, ...) as a dict. They are not exported here: a test
    module exports them for its own duration (`s3_environment`), so that other modules' tasks
    (e.g. Spark sessions, which turn s3a on when they see an endpoint) run without them."""
    from tests.servers import ceph

    for server in running_server("ceph", tmp_path_factory):
        yield ceph.s3_settings(server.state_dir)


@contextmanager
def s3_environment(settings: dict[str, str]) -> Iterator[None]:
    """The S3 settings in os.environ for the block (the DAG's tasks and their children read
    them, as a worker reads its environment), restored afterwards."""
    with pytest.MonkeyPatch.context() as mp:
        for key, value in settings.items():
            mp.setenv(key, value)
        yield


#: The days produced to Kafka for the `source: kafka` runs; the DAG runs the middle one.
KAFKA_DAYS = ("2026-03-01", "2026-03-02", "2026-03-03")


@pytest.fixture(scope="session")
def produced(kafka_server, tmp_path_factory) -> dict:
    """Three generated days in Kafka (topics with a private prefix) and, for the expected
    counts, the same data set generated into a local folder: per day and table."""
    from datetime import date

    import pyarrow.parquet as pq
    from fraudwatch.generator.population import GeneratorConfig
    from fraudwatch.generator.writer import generate
    from fraudwatch.streaming.produce import generate_to_kafka

    config = GeneratorConfig(
        users=1_000,
        transactions=15_000,
        seed=21,
        start=date.fromisoformat(KAFKA_DAYS[0]),
        days=len(KAFKA_DAYS),
        fraud_rate=0.02,
    )
    prefix = f"airflow-{uuid.uuid4().hex[:8]}."
    counts = generate_to_kafka(config, kafka_server.url, topic_prefix=prefix)
    local = tmp_path_factory.mktemp("expected") / "raw"
    generate(config, local)
    per_day = {
        day: {
            table: pq.read_table(local / table / f"date={day}").num_rows
            for table in ("transactions", "logins", "api_calls")
        }
        for day in KAFKA_DAYS
    }
    return {
        "bootstrap": kafka_server.url,
        "prefix": prefix,
        "counts": counts,
        "day": per_day[KAFKA_DAYS[1]],
        "days": per_day,
    }
