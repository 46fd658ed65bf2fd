"""Fixtures for the streaming tests: a real Kafka broker and Elasticsearch node (the pattern of
tests/integration/servers/conftest.py, through the same tests/servers modules), a tiny
generated data set, a model version fitted on it, and a Spark session with the Kafka connector.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import pytest

from tests.servers import cache_dir, default_state_dir, elasticsearch, kafka, port_from_env
from tests.servers.process_control import is_running, read_pid

pytestmark = pytest.mark.spark


@dataclass(frozen=True)
class RunningServer:
    name: str
    url: str
    port: int
    state_dir: Path
    owned: bool  # started by this session, so a test may stop and restart it


def _server(
    module: ModuleType, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningServer]:
    port = port_from_env(module.NAME, module.DEFAULT_PORT)
    shared = default_state_dir().resolve()
    pid = read_pid(shared, module.NAME)
    if pid is not None and is_running(pid):
        yield RunningServer(module.NAME, module.url(port), port, shared, owned=False)
        return
    state_dir = tmp_path_factory.mktemp(f"{module.NAME}-state")
    module.start(state_dir, port)
    try:
        yield RunningServer(module.NAME, module.url(port), port, state_dir, owned=True)
    finally:
        module.stop(state_dir)


@pytest.fixture(scope="session")
def kafka_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    yield from _server(kafka, tmp_path_factory)


@pytest.fixture(scope="session")
def elasticsearch_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    yield from _server(elasticsearch, tmp_path_factory)


@dataclass(frozen=True)
class ScoredDataSet:
    raw: Path
    models_dir: Path
    transactions: int


@pytest.fixture(scope="session")
def tiny_data_set(tmp_path_factory: pytest.TempPathFactory) -> ScoredDataSet:
    """60 users, 300 transactions (with anomaly scenarios), and an Isolation Forest fitted on
    them by the batch job: the model version the stream scores with."""
    from fraudwatch.generator.population import GeneratorConfig
    from fraudwatch.generator.writer import generate
    from fraudwatch.scoring.pipeline import ScoreOptions, score

    root = tmp_path_factory.mktemp("stream-data")
    config = GeneratorConfig(users=60, transactions=300, seed=7, days=7, fraud_rate=0.05)
    summary = generate(config, root / "raw")
    score(root / "raw", root / "scored", ScoreOptions(models=["iforest"], fit_users=60))
    (models_dir,) = (root / "scored" / "models").iterdir()
    return ScoredDataSet(root / "raw", models_dir, summary.counts["transactions"])


@pytest.fixture(scope="session")
def spark() -> Iterator[object]:
    """local[2] Spark with the Kafka connector resolved into the project's artefact cache."""
    pytest.importorskip("pyspark")
    os.environ.setdefault("FRAUDWATCH_SPARK_IVY", str(cache_dir() / "spark-ivy"))
    from fraudwatch.streaming.job import streaming_session

    session = streaming_session()
    try:
        yield session
    finally:
        session.stop()
