"""Kafka with SASL/SCRAM-SHA-512 (how the Pulumi stack's Strimzi cluster takes clients): the
producer, the admin client and the Spark source authenticate from the environment
(streaming/kafka_security.py) against the real broker's SASL listener."""

from __future__ import annotations

import uuid
from pathlib import Path

import httpx
import pytest
from fraudwatch.errors import UserError
from fraudwatch.streaming.job import run_stream
from fraudwatch.streaming.produce import ensure_topics, produce_raw
from fraudwatch.streaming.stream_settings import StreamSettings

from tests.servers import kafka

pytestmark = pytest.mark.spark


@pytest.fixture
def sasl_bootstrap(kafka_broker, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    credentials = kafka.scram_credentials(kafka_broker.state_dir)
    if credentials is None:
        pytest.skip("this broker was formatted without the SCRAM user (an older services-up)")
    user, password = credentials
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "kafka-password").write_text(password + "\n")
    monkeypatch.setenv("FRAUDWATCH_KAFKA_SECURITY_PROTOCOL", "SASL_PLAINTEXT")
    monkeypatch.setenv("FRAUDWATCH_KAFKA_USERNAME", user)
    monkeypatch.delenv("FRAUDWATCH_KAFKA_PASSWORD", raising=False)
    monkeypatch.setenv("FRAUDWATCH_SECRETS_DIR", str(tmp_path / "secrets"))
    return f"127.0.0.1:{kafka.sasl_port(kafka_broker.port)}"


def test_events_flow_through_the_sasl_listener_end_to_end(
    sasl_bootstrap, elasticsearch_node, tiny_data_set, spark, tmp_path
):
    tag = uuid.uuid4().hex[:8]
    prefix, index = f"sasl{tag}.", f"stream-sasl-{tag}"
    counts = produce_raw(tiny_data_set.raw, sasl_bootstrap, prefix)
    settings = StreamSettings(
        bootstrap_servers=sasl_bootstrap,
        models_dir=tiny_data_set.models_dir,
        es_url=elasticsearch_node.url,
        checkpoint=tmp_path / "ckpt",
        topic_prefix=prefix,
        es_index=index,
        available_now=True,
    )
    processor = run_stream(settings, spark)

    assert sum(r.indexed for r in processor.results) == counts["transactions"]
    httpx.post(f"{elasticsearch_node.url}/{index}/_refresh").raise_for_status()
    found = httpx.get(f"{elasticsearch_node.url}/{index}/_count").json()["count"]
    assert found == counts["transactions"] == tiny_data_set.transactions


def test_a_wrong_password_is_refused_with_a_clear_error(
    sasl_bootstrap, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("FRAUDWATCH_KAFKA_PASSWORD", "not-the-password")
    with pytest.raises(UserError, match="did not answer"):
        ensure_topics(sasl_bootstrap, f"sasl{uuid.uuid4().hex[:8]}.")
