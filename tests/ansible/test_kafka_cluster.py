"""The three-node sample inventory's Kafka: three KRaft nodes that form one quorum, and a
rolling upgrade (upgrade.yml, one broker at a time) that never stops the cluster serving.

Steps: deploy (base + kafka), deploy again with nothing changed, check the quorum and
replication, then upgrade 4.0.0 -> 4.1.0 while a client keeps producing with acks=all, and
read back every message produced before and during the upgrade.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
import testinfra
from artifact_mirror import KAFKA_VERSIONS
from kafka import KafkaConsumer, KafkaProducer

HOSTS = {
    "fraudwatch-1": "10.89.71.21",
    "fraudwatch-2": "10.89.71.22",
    "fraudwatch-3": "10.89.71.23",
}
BOOTSTRAP = [f"{address}:9092" for address in HOSTS.values()]
OLD, NEW = KAFKA_VERSIONS
TOPIC = "fraudwatch.transactions"


#: deploy.yml's arguments for the two convergence runs (tests/ansible/conftest.py).
DEPLOY_ARGS = ("--tags", "base,kafka")


@pytest.fixture(scope="module")
def site(site_factory: Any) -> Any:
    return site_factory("three-node", HOSTS, kafka_version=OLD)


@pytest.fixture(scope="module")
def hosts(site: Any, second_deploy: Any) -> dict[str, Any]:
    assert second_deploy.returncode == 0, second_deploy.explain()
    return {h.name: testinfra.get_host(f"podman://{h.container}") for h in site.hosts}


def produce(messages: list[str]) -> None:
    producer = KafkaProducer(bootstrap_servers=BOOTSTRAP, acks="all", delivery_timeout_ms=120000)
    try:
        for message in messages:
            producer.send(TOPIC, message.encode()).get(timeout=60)
    finally:
        producer.close()


def consume_all() -> list[str]:
    consumer = KafkaConsumer(
        TOPIC,
        bootstrap_servers=BOOTSTRAP,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        consumer_timeout_ms=15000,
    )
    try:
        return [record.value.decode() for record in consumer]
    finally:
        consumer.close()


def test_01_deploy_converges_on_three_hosts(first_deploy: Any) -> None:
    assert first_deploy.returncode == 0, first_deploy.explain()
    assert set(first_deploy.recap) == set(HOSTS)
    assert all(counts["failed"] == 0 for counts in first_deploy.recap.values())


def test_02_second_deploy_changes_nothing(second_deploy: Any) -> None:
    assert second_deploy.changed() == dict.fromkeys(HOSTS, 0), second_deploy.explain()


def test_03_the_three_nodes_form_one_quorum(hosts: dict[str, Any]) -> None:
    for name, host in hosts.items():
        assert host.service("kafka").is_running and host.service("kafka").is_enabled
        assert host.socket(f"tcp://{HOSTS[name]}:9092").is_listening
        assert host.socket(f"tcp://{HOSTS[name]}:9093").is_listening
    status = hosts["fraudwatch-2"].run(
        "/opt/kafka/bin/kafka-tool org.apache.kafka.tools.MetadataQuorumCommand "
        f"--bootstrap-server {HOSTS['fraudwatch-2']}:9092 describe --status"
    )
    assert status.rc == 0, status.stderr
    voters = next(line for line in status.stdout.splitlines() if "CurrentVoters" in line)
    assert all(
        f'"id": {node_id}' in voters or f'"id":{node_id}' in voters for node_id in (1, 2, 3)
    ), voters


def test_04_topics_are_replicated_on_all_three(hosts: dict[str, Any]) -> None:
    described = hosts["fraudwatch-1"].run(
        "/opt/kafka/bin/kafka-tool org.apache.kafka.tools.TopicCommand "
        f"--bootstrap-server {HOSTS['fraudwatch-1']}:9092 --describe --topic {TOPIC}"
    )
    assert "ReplicationFactor: 3" in described.stdout, described.stdout + described.stderr
    assert "min.insync.replicas=2" in described.stdout


def test_05_rolling_upgrade_keeps_the_cluster_serving(site: Any, hosts: dict[str, Any]) -> None:
    before = [f"before-{i}" for i in range(20)]
    produce(before)

    during: list[str] = []
    errors: list[str] = []
    stop = threading.Event()

    def keep_producing() -> None:
        # What a careful client does: acks=all, idempotent, retried for up to two minutes.
        producer = KafkaProducer(
            bootstrap_servers=BOOTSTRAP,
            acks="all",
            enable_idempotence=True,
            delivery_timeout_ms=120000,
            request_timeout_ms=30000,
        )
        # Bounded: at most 3000 messages, one every 0.2 s, until the upgrade ends.
        for i in range(3000):
            if stop.is_set():
                break
            message = f"during-{i}"
            try:
                producer.send(TOPIC, message.encode()).get(timeout=150)
                during.append(message)
            except Exception as error:  # every failed write is a visible outage
                errors.append(f"{message}: {error!r}")
            time.sleep(0.2)
        producer.close()

    writer = threading.Thread(target=keep_producing)
    writer.start()
    try:
        upgrade = site.playbook("upgrade.yml", "--tags", "kafka", "-e", f"kafka_version={NEW}")
    finally:
        stop.set()
        writer.join()
    assert upgrade.returncode == 0, upgrade.explain()
    # serial: 1 — Ansible starts one batch (one play header) per broker.
    assert upgrade.output.count("PLAY [Upgrade Kafka, one broker at a time]") == len(HOSTS)
    assert errors == [], errors[:5]
    assert len(during) > 10  # the writer really ran across the upgrade

    for name, host in hosts.items():
        assert host.file("/opt/kafka/current").linked_to == f"/opt/kafka/kafka-{NEW}", name
        assert host.service("kafka").is_running
        log = host.run("journalctl -u kafka --no-pager -o cat | grep 'Kafka version'").stdout
        assert f"Kafka version: {NEW}" in log, name

    received = set(consume_all())
    assert set(before) <= received
    assert set(during) <= received, sorted(set(during) - received)[:10]


def test_06_upgrading_again_changes_nothing(site: Any) -> None:
    rerun = site.playbook("upgrade.yml", "--tags", "kafka", "-e", f"kafka_version={NEW}")
    assert rerun.returncode == 0, rerun.explain()
    # Nothing left to upgrade: a second run restarts no broker.
    assert rerun.changed() == dict.fromkeys(HOSTS, 0), rerun.explain()
