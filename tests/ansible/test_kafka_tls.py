"""The kafka role's TLS option on one systemd host: a CA and a host certificate made for this
run (the key vault-encrypted on the controller, as an operator keeps it), converged twice,
then a client that trusts the CA produces and consumes over TLS, and plaintext is refused.
"""

from __future__ import annotations

import datetime
import ipaddress
import socket
import ssl
import struct
import subprocess
from pathlib import Path
from typing import Any

import pytest
from conftest import BIN_DIR
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from kafka import KafkaConsumer, KafkaProducer

ADDRESS = "10.89.71.51"
HOST = "fraudwatch-1"
BOOTSTRAP = f"{ADDRESS}:9092"


def _certificate(
    subject: str, key: Any, issuer: x509.Name | None, issuer_key: Any, address: str | None
) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer or name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=address is None, path_length=None), critical=True)
    )
    if address is not None:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(address))]),
            critical=False,
        )
    return builder.sign(issuer_key, hashes.SHA256())


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A throwaway CA and this host's certificate; the key file vault-encrypted later."""
    out = tmp_path_factory.mktemp("kafka-tls")
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = _certificate("fraudwatch test CA", ca_key, None, ca_key, None)
    key = ec.generate_private_key(ec.SECP256R1())
    cert = _certificate(HOST, key, ca.subject, ca_key, ADDRESS)
    files = {"ca": out / "ca.crt", "cert": out / f"{HOST}.crt", "key": out / f"{HOST}.key"}
    files["ca"].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    files["cert"].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    files["key"].write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    files["key"].chmod(0o600)
    return files


#: deploy.yml's arguments for the two convergence runs (tests/ansible/conftest.py).
DEPLOY_ARGS = ("--tags", "kafka")


@pytest.fixture(scope="module")
def site(site_factory: Any, tls_files: dict[str, Path]) -> Any:
    made = site_factory(
        "single-node",
        {HOST: ADDRESS},
        kafka_tls_enabled=True,
        kafka_tls_certificate_src=str(tls_files["cert"]),
        kafka_tls_key_src=str(tls_files["key"]),
        kafka_tls_ca_src=str(tls_files["ca"]),
    )
    # The private key is kept the way the role's documentation asks: vault-encrypted.
    subprocess.run(
        [
            str(BIN_DIR / "ansible-vault"),
            "encrypt",
            "--vault-password-file",
            str(made.vault_password_file),
            str(tls_files["key"]),
        ],
        check=True,
        capture_output=True,
    )
    return made


def test_01_deploy_converges_with_tls(first_deploy: Any) -> None:
    assert first_deploy.returncode == 0, first_deploy.explain()
    assert first_deploy.recap[HOST]["changed"] > 0


def test_02_second_deploy_changes_nothing(second_deploy: Any) -> None:
    assert second_deploy.changed() == {HOST: 0}, second_deploy.explain()


def test_the_broker_presents_the_hosts_certificate(host: Any, tls_files: dict[str, Path]) -> None:
    assert host.service("kafka").is_running and host.service("kafka").is_enabled
    config = host.file("/etc/kafka/server.properties").content_string
    assert f"listeners=SSL://{ADDRESS}:9092,CONTROLLER://{ADDRESS}:9093" in config
    assert "PLAINTEXT" not in config
    key = host.file("/etc/kafka/tls/node.pem")
    assert key.mode == 0o640 and key.user == "root" and key.group == "kafka"
    assert "ANSIBLE_VAULT" not in key.content_string
    context = ssl.create_default_context(cafile=str(tls_files["ca"]))
    with (
        socket.create_connection((ADDRESS, 9092), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname=ADDRESS) as tls,
    ):
        peer = tls.getpeercert()
    assert ("IP Address", ADDRESS) in peer["subjectAltName"]


def test_clients_produce_and_consume_over_tls(host: Any, tls_files: dict[str, Path]) -> None:
    tls = {"security_protocol": "SSL", "ssl_cafile": str(tls_files["ca"])}
    producer = KafkaProducer(
        bootstrap_servers=[BOOTSTRAP], acks="all", delivery_timeout_ms=120000, **tls
    )
    try:
        for i in range(5):
            producer.send("fraudwatch.transactions", f"tls-{i}".encode()).get(timeout=150)
    finally:
        producer.close()
    consumer = KafkaConsumer(
        "fraudwatch.transactions",
        bootstrap_servers=[BOOTSTRAP],
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        consumer_timeout_ms=15000,
        **tls,
    )
    try:
        received = {record.value.decode() for record in consumer}
    finally:
        consumer.close()
    assert {f"tls-{i}" for i in range(5)} <= received


def kafka_api_versions_plaintext() -> bytes:
    """Send a plaintext ApiVersions request (v0) to the broker port; return what comes back."""
    client_id = b"fraudwatch-test"
    header = struct.pack(">hhih", 18, 0, 42, len(client_id)) + client_id
    with socket.create_connection((ADDRESS, 9092), timeout=10) as raw:
        raw.sendall(struct.pack(">i", len(header)) + header)
        raw.settimeout(10)
        try:
            return raw.recv(64)
        except (TimeoutError, ConnectionResetError):
            return b""


def test_plaintext_clients_are_refused(host: Any) -> None:
    reply = kafka_api_versions_plaintext()
    # A plaintext listener answers with a frame carrying our correlation id (42); the TLS
    # listener answers with a TLS alert (record type 21) or closes the connection.
    assert reply[4:8] != struct.pack(">i", 42), reply
    assert reply == b"" or reply[0] == 21, reply
