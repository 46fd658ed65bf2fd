"""Fixtures: real scored data, and a real Elasticsearch node from tests/servers/elasticsearch.py."""

from __future__ import annotations

import importlib.util
import os
import socket
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(REPO / "tests" / "unit" / "dashboards"))
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from dashboards_fixtures import make_scored  # noqa: E402


@pytest.fixture(scope="session")
def scored_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_scored(tmp_path_factory.mktemp("dashboards-data"))


def _bindable(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _free_port() -> int:
    """A free HTTP port (with its transport port, +100, free too) in the node runner's range:
    the runner refuses ports far from Elasticsearch's usual 92xx."""
    for port in range(9250, 9300):
        if _bindable(port) and _bindable(port + 100):
            return port
    raise RuntimeError("no free port in 9250-9299; set FRAUDWATCH_TEST_ES_PORT")


@pytest.fixture(scope="session")
def es_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Elasticsearch node on 127.0.0.1 for this session, stopped afterwards."""
    if importlib.util.find_spec("tests.servers.elasticsearch") is None:
        pytest.skip("tests/servers/elasticsearch.py is missing: no Elasticsearch node to test on")
    from tests.servers import elasticsearch as node
    from tests.servers.process_control import ServerStartError

    state = tmp_path_factory.mktemp("elasticsearch-state")
    fixed = os.environ.get("FRAUDWATCH_TEST_ES_PORT")
    # The machine is shared: a port free when probed can be taken before the node binds it,
    # so a failed start is tried once more on another free port (the error is kept if not).
    for attempt in range(1 if fixed else 2):
        port = int(fixed or _free_port())
        try:
            node.start(state, port)
            break
        except ServerStartError:
            if fixed or attempt == 1:
                raise
    try:
        yield node.url(port)
    finally:
        node.stop(state)
