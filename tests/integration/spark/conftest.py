"""The Spark standalone cluster (tests/servers/spark_standalone.py) as a fixture of the
integration tier: a master and one worker on 127.0.0.1, started for the tests that ask for it
and stopped by PID at the end of the session."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.servers import spark_standalone


@pytest.fixture(scope="session")
def spark_cluster(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[spark_standalone.StandaloneCluster]:
    """`.master_url` (spark://127.0.0.1:PORT) for FRAUDWATCH_SPARK_MASTER, `.status()` the
    master's JSON status."""
    pytest.importorskip("pyspark")
    state_dir = tmp_path_factory.mktemp("spark-standalone")
    cluster = spark_standalone.start(state_dir)
    try:
        yield cluster
    finally:
        spark_standalone.stop(state_dir)
