"""Fixtures for the streaming tests: the tier's real Kafka broker and Elasticsearch node, a tiny
generated data set, a model version fitted on it, and a Spark session with the Kafka connector.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.servers import cache_dir

pytestmark = pytest.mark.spark


@pytest.fixture(scope="session")
def kafka_broker(kafka_server):
    """The integration tier's Kafka broker (tests/integration/conftest.py)."""
    return kafka_server


@pytest.fixture(scope="session")
def elasticsearch_node(elasticsearch_server):
    """The integration tier's Elasticsearch node (tests/integration/conftest.py)."""
    return elasticsearch_server


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
def spark(ceph_s3) -> Iterator[object]:
    """local[2] Spark with the Kafka connector and s3a (pointed at the tier's Ceph, for
    checkpoints on S3), resolved into the project's artefact cache."""
    pytest.importorskip("pyspark")
    os.environ.setdefault("FRAUDWATCH_SPARK_IVY", str(cache_dir() / "spark-ivy"))
    from fraudwatch.streaming.spark_source import streaming_session

    session = streaming_session(s3=True)
    try:
        yield session
    finally:
        session.stop()
