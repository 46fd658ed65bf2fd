"""Session-scoped fixtures that start only the real servers a test asks for (tests/servers).

A server already started by `make services-up` (a live PID in FRAUDWATCH_SERVICES_DIR,
default .cache/services/) is reused and left running; otherwise the fixture starts its own
in a temporary state directory, on the port from FRAUDWATCH_<NAME>_PORT or the default,
and stops exactly that PID at the end of the session (tests/servers/fixtures.py).
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests.servers import ceph
from tests.servers.fixtures import RunningServer, running_server

# The Elasticsearch fixture is shared with the Airflow tier (tests/servers/fixtures.py).
from tests.servers.fixtures import elasticsearch_server as elasticsearch_server


@pytest.fixture(scope="session")
def mongo_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real FerretDB (MongoDB wire protocol) for the whole session, on
    FRAUDWATCH_TEST_MONGO_PORT or a free port; stopped at the end."""
    from tests.servers import ferretdb

    port = int(os.environ.get("FRAUDWATCH_TEST_MONGO_PORT") or _free_port())
    state_dir = tmp_path_factory.mktemp("ferretdb")
    ferretdb.start(state_dir, port)
    try:
        yield ferretdb.url(port)
    finally:
        ferretdb.stop(state_dir)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def kafka_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """A real Kafka broker (KRaft); `.url` is the bootstrap server."""
    yield from running_server("kafka", tmp_path_factory)


@dataclass(frozen=True)
class S3Endpoint:
    endpoint: str
    access_key: str
    secret_key: str
    region: str


@pytest.fixture(scope="session")
def ceph_s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Endpoint]:
    """Ceph radosgw with a fresh S3 user; its settings are exported to os.environ for clients."""
    for server in running_server("ceph", tmp_path_factory):
        settings = ceph.s3_settings(server.state_dir)
        saved = {key: os.environ.get(key) for key in settings}
        os.environ.update(settings)
        try:
            yield S3Endpoint(
                endpoint=settings["AWS_ENDPOINT_URL_S3"],
                access_key=settings["AWS_ACCESS_KEY_ID"],
                secret_key=settings["AWS_SECRET_ACCESS_KEY"],
                region=settings["AWS_DEFAULT_REGION"],
            )
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value


@pytest.fixture(scope="session")
def spark_with_connectors(ceph_s3: S3Endpoint) -> Iterator[object]:
    """A local Spark session with spark-sql-kafka and hadoop-aws loaded, s3a pointed at Ceph."""
    pyspark_sql = pytest.importorskip("pyspark.sql")
    from tests.servers import spark_connectors

    builder = (
        pyspark_sql.SparkSession.builder.master("local[2]")
        .appName("fraudwatch-connector-smoke")
        .config("spark.driver.memory", "1g")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "2")
    )
    settings = {
        **spark_connectors.session_config(),
        **spark_connectors.s3a_config(ceph_s3.endpoint, ceph_s3.access_key, ceph_s3.secret_key),
    }
    for key, value in settings.items():
        builder = builder.config(key, value)
    session = builder.getOrCreate()
    try:
        yield session
    finally:
        session.stop()
