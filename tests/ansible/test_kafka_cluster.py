"""The three-node sample inventory's Kafka over TLS: three KRaft nodes that find each other and
form one quorum (clients, brokers and controllers all on TLS), and a rolling upgrade
(upgrade.yml, one broker at a time) that never stops the cluster serving.

Steps: a CA and one certificate per host made for this run (the keys vault-encrypted on the
controller, as an operator keeps them); deploy (base + kafka), deploy again with nothing
changed; check the certificates, that plaintext is refused, the quorum and replication; then
upgrade 4.0.0 -> 4.1.0 while a client keeps producing with acks=all, and read back every
message produced before and during the upgrade.
"""

from __future__ import annotations

import socket
import ssl
import struct
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import testinfra
from artifact_mirror import KAFKA_VERSIONS
from kafka import KafkaConsumer, KafkaProducer
from throwaway_pki import make_pki, vault_encrypt_keys

HOSTS = {
    "fraudwatch-1": "10.89.71.21",
    "fraudwatch-2": "10.89.71.22",
    "fraudwatch-3": "10.89.71.23",
}
BOOTSTRAP = [f"{address}:9092" for address in HOSTS.values()]
OLD, NEW = KAFKA_VERSIONS
TOPIC = "fraudwatch.transactions"
TOOL_CLIENT = "--command-config /etc/kafka/client.properties"


@pytest.fixture(scope="module")
def tls_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A throwaway CA and one certificate per host (IP SAN); keys vault-encrypted in `site`."""
    return make_pki(tmp_path_factory.mktemp("kafka-tls"), HOSTS, "Kafka")


#: deploy.yml's arguments for the two convergence runs (tests/ansible/conftest.py).
DEPLOY_ARGS = ("--tags", "base,kafka")


@pytest.fixture(scope="module")
def site(site_factory: Any, tls_dir: Path) -> Any:
    made = site_factory(
        "three-node",
        HOSTS,
        kafka_version=OLD,
        kafka_tls_enabled=True,
        kafka_tls_certificate_src=f"{tls_dir}/{{{{ inventory_hostname }}}}.crt",
        kafka_tls_key_src=f"{tls_dir}/{{{{ inventory_hostname }}}}.key",
        kafka_tls_ca_src=str(tls_dir / "ca.crt"),
    )
    # The private keys are kept the way the role's documentation asks: vault-encrypted.
    vault_encrypt_keys(tls_dir, HOSTS, made.vault_password_file)
    return made


@pytest.fixture(scope="module")
def hosts(site: Any, second_deploy: Any) -> dict[str, Any]:
    assert second_deploy.returncode == 0, second_deploy.explain()
    return {h.name: testinfra.get_host(f"podman://{h.container}") for h in site.hosts}


@pytest.fixture(scope="module")
def tls(tls_dir: Path) -> dict[str, str]:
    """kafka-python's settings of a client that trusts the site's CA."""
    return {"security_protocol": "SSL", "ssl_cafile": str(tls_dir / "ca.crt")}


def produce(messages: list[str], tls: dict[str, str]) -> None:
    producer = KafkaProducer(
        bootstrap_servers=BOOTSTRAP, acks="all", delivery_timeout_ms=120000, **tls
    )
    try:
        for message in messages:
            producer.send(TOPIC, message.encode()).get(timeout=150)
    finally:
        producer.close()


def consume_all(tls: dict[str, str]) -> list[str]:
    consumer = KafkaConsumer(
        TOPIC,
        bootstrap_servers=BOOTSTRAP,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        consumer_timeout_ms=15000,
        **tls,
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
    assert second_deploy.returncode == 0, second_deploy.explain()
    assert second_deploy.changed() == dict.fromkeys(HOSTS, 0), second_deploy.explain()


def test_03_each_broker_presents_its_hosts_certificate(
    hosts: dict[str, Any], tls_dir: Path
) -> None:
    context = ssl.create_default_context(cafile=str(tls_dir / "ca.crt"))
    for name, host in hosts.items():
        address = HOSTS[name]
        config = host.file("/etc/kafka/server.properties").content_string
        assert f"listeners=SSL://{address}:9092,CONTROLLER://{address}:9093" in config
        assert "PLAINTEXT" not in config
        key = host.file("/etc/kafka/tls/node.pem")
        assert key.mode == 0o640 and key.user == "root" and key.group == "kafka"
        assert "ANSIBLE_VAULT" not in key.content_string
        for port in (9092, 9093):  # clients and the controllers
            with (
                socket.create_connection((address, port), timeout=10) as raw,
                context.wrap_socket(raw, server_hostname=address) as connection,
            ):
                peer = connection.getpeercert()
            assert ("IP Address", address) in peer["subjectAltName"], (name, port)


def kafka_api_versions_plaintext(address: str) -> bytes:
    """Send a plaintext ApiVersions request (v0) to a broker port; return what comes back."""
    client_id = b"fraudwatch-test"
    header = struct.pack(">hhih", 18, 0, 42, len(client_id)) + client_id
    with socket.create_connection((address, 9092), timeout=10) as raw:
        raw.sendall(struct.pack(">i", len(header)) + header)
        raw.settimeout(10)
        try:
            return raw.recv(64)
        except (TimeoutError, ConnectionResetError):
            return b""


def test_04_plaintext_clients_are_refused(hosts: dict[str, Any]) -> None:
    for address in HOSTS.values():
        reply = kafka_api_versions_plaintext(address)
        # A plaintext listener answers with a frame carrying our correlation id (42); the TLS
        # listener answers with a TLS alert (record type 21) or closes the connection.
        assert reply[4:8] != struct.pack(">i", 42), reply
        assert reply == b"" or reply[0] == 21, reply


def test_05_the_three_nodes_form_one_quorum(hosts: dict[str, Any]) -> None:
    for name, host in hosts.items():
        assert host.service("kafka").is_running and host.service("kafka").is_enabled
        assert host.socket(f"tcp://{HOSTS[name]}:9092").is_listening
        assert host.socket(f"tcp://{HOSTS[name]}:9093").is_listening
    status = hosts["fraudwatch-2"].run(
        "/opt/kafka/bin/kafka-tool org.apache.kafka.tools.MetadataQuorumCommand "
        f"--bootstrap-server {HOSTS['fraudwatch-2']}:9092 {TOOL_CLIENT} describe --status"
    )
    assert status.rc == 0, status.stderr
    voters = next(line for line in status.stdout.splitlines() if "CurrentVoters" in line)
    assert all(
        f'"id": {node_id}' in voters or f'"id":{node_id}' in voters for node_id in (1, 2, 3)
    ), voters


def test_06_topics_are_replicated_on_all_three(hosts: dict[str, Any]) -> None:
    described = hosts["fraudwatch-1"].run(
        "/opt/kafka/bin/kafka-tool org.apache.kafka.tools.TopicCommand "
        f"--bootstrap-server {HOSTS['fraudwatch-1']}:9092 --describe --topic {TOPIC} "
        f"{TOOL_CLIENT}"
    )
    assert "ReplicationFactor: 3" in described.stdout, described.stdout + described.stderr
    assert "min.insync.replicas=2" in described.stdout


def test_07_rolling_upgrade_keeps_the_cluster_serving(
    site: Any, hosts: dict[str, Any], tls: dict[str, str]
) -> None:
    before = [f"before-{i}" for i in range(20)]
    produce(before, tls)

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
            **tls,
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

    received = set(consume_all(tls))
    assert set(before) <= received
    assert set(during) <= received, sorted(set(during) - received)[:10]


def test_08_upgrading_again_changes_nothing(site: Any) -> None:
    rerun = site.playbook("upgrade.yml", "--tags", "kafka", "-e", f"kafka_version={NEW}")
    assert rerun.returncode == 0, rerun.explain()
    # Nothing left to upgrade: a second run restarts no broker.
    assert rerun.changed() == dict.fromkeys(HOSTS, 0), rerun.explain()
