"""The elasticsearch role on one systemd host, with the stand-in build design.md allows.

Elastic's tarball cannot be fetched here, so the role's `oss-jars` build is converged: the
OSS Elasticsearch 7.10.2 server and modules from Maven Central (through the artefact mirror),
as a systemd service. Deploy twice (nothing changes the second time), then check it as an
operator would: running and enabled, on the host's address only, reachable through the
firewall, and it indexes a document and finds it again.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from artifact_mirror import ELASTICSEARCH_OSS_VERSION
from conftest import request_json
from test_single_node import assert_serving

ADDRESS = "10.89.71.41"
HOST = "fraudwatch-1"
URL = f"http://{ADDRESS}:9200"


#: deploy.yml's arguments for the two convergence runs (tests/ansible/conftest.py).
DEPLOY_ARGS = ("--tags", "base,elasticsearch")


@pytest.fixture(scope="module")
def site(site_factory: Any) -> Any:
    return site_factory(
        "single-node",
        {HOST: ADDRESS},
        groups={"elasticsearch": [HOST]},
        elasticsearch_distribution="oss-jars",
        elasticsearch_version=ELASTICSEARCH_OSS_VERSION,
        elasticsearch_heap_size="384m",
    )


def call(method: str, path: str, body: object | None = None) -> dict[str, Any]:
    """One REST call to the node from the test."""
    answer: dict[str, Any] = request_json(method, f"{URL}{path}", body)
    return answer


def test_01_deploy_converges(first_deploy: Any) -> None:
    assert first_deploy.returncode == 0, first_deploy.explain()
    assert first_deploy.recap[HOST]["changed"] > 0


def test_02_second_deploy_changes_nothing(second_deploy: Any) -> None:
    assert second_deploy.returncode == 0, second_deploy.explain()
    assert second_deploy.changed() == {HOST: 0}, second_deploy.explain()


def test_elasticsearch_serves_on_the_host_address_only(host: Any) -> None:
    assert_serving(host, "elasticsearch", 9200, ADDRESS)
    assert host.socket(f"tcp://{ADDRESS}:9300").is_listening
    assert not host.socket("tcp://0.0.0.0:9300").is_listening
    assert host.process.get(user="elasticsearch", comm="java")
    assert host.file("/etc/elasticsearch/elasticsearch.yml").contains(f"network.host: {ADDRESS}")
    assert "9200" in host.run("nft list table inet fraudwatch").stdout


def test_the_cluster_is_the_configured_one(host: Any) -> None:
    info = call("GET", "/")
    assert info["cluster_name"] == "fraudwatch"
    assert info["version"]["number"] == ELASTICSEARCH_OSS_VERSION
    health = call("GET", "/_cluster/health?wait_for_status=yellow&timeout=60s")
    assert health["status"] in {"green", "yellow"}
    assert health["number_of_nodes"] == 1


def test_elasticsearch_indexes_and_finds_a_scored_user(host: Any) -> None:
    call(
        "PUT",
        "/fraudwatch-anomalies-test",
        {"mappings": {"properties": {"user_id": {"type": "keyword"}, "score": {"type": "float"}}}},
    )
    indexed = call(
        "PUT",
        "/fraudwatch-anomalies-test/_doc/u-42?refresh=true",
        {"user_id": "u-42", "score": 0.97, "reasons": ["new device", "large withdrawal"]},
    )
    assert indexed["result"] == "created"
    found = call(
        "POST",
        "/fraudwatch-anomalies-test/_search",
        {"query": {"bool": {"filter": [{"range": {"score": {"gte": 0.9}}}]}}},
    )
    hits = found["hits"]["hits"]
    assert [hit["_source"]["user_id"] for hit in hits] == ["u-42"]
    # It survives a restart of the service (data on disk, not in memory).
    restarted = host.run("systemctl restart elasticsearch")
    assert restarted.rc == 0, restarted.stderr
    again = host.run(
        "curl -sf --retry 40 --retry-delay 3 --retry-all-errors "
        f"'{URL}/fraudwatch-anomalies-test/_doc/u-42'"
    )
    assert again.rc == 0, host.run("journalctl -u elasticsearch -n 40 --no-pager").stdout
    assert json.loads(again.stdout)["_source"]["score"] == 0.97
