"""The mongodb role's FerretDB stand-in and the intervention service keeping its state in it.

MongoDB's packages cannot be fetched here, so the role is converged with
`mongodb_distribution: ferretdb` (FerretDB 1.24 on SQLite, from the artefact mirror; design.md
§5). One host runs it and the fraudwatch services, whose state store then defaults to that
MongoDB. TLS is on (mongodb_tls_enabled, a CA and certificate made for this run): FerretDB
opens its TLS listener only, and the services connect with tls=true and the CA. Deploy twice
(nothing changes the second time), then check as an operator would: the database is up, on
the host's address only, over TLS only, refuses clients that have not logged in, stores and
returns a document for a client on the network; the intervention service's tokens, audit
log and account states are in it. The services' Kafka client settings (TLS with SASL, the
password in a secret file) are checked in their environment and through the product's code.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import socket
import ssl
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from conftest import request_json
from pymongo import MongoClient
from pymongo.errors import OperationFailure, ServerSelectionTimeoutError
from test_single_node import FRAUDWATCH_AS_SERVICE_USER, assert_serving, run_first_batch
from throwaway_pki import make_pki, vault_encrypt_keys

ADDRESS = "10.89.71.71"
HOST = "fraudwatch-1"
PORT = 27017
DATABASE = "fraudwatch"
APP_USER = "fraudwatch"
KAFKA_USER = "fraudwatch-stream"
INTERVENTION = f"http://{ADDRESS}:8000"

#: deploy.yml's arguments for the two convergence runs (tests/ansible/conftest.py).
DEPLOY_ARGS = ("--tags", "base,mongodb,fraudwatch")


@pytest.fixture(scope="module")
def kafka_ca(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A throwaway CA certificate, standing for the brokers' CA the kafka role is given."""
    return make_pki(tmp_path_factory.mktemp("kafka-ca"), {}, "Kafka") / "ca.crt"


@pytest.fixture(scope="module")
def mongodb_tls(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A throwaway CA and the database host's certificate (IP SAN); its key vault-encrypted."""
    return make_pki(tmp_path_factory.mktemp("mongodb-tls"), {HOST: ADDRESS}, "MongoDB")


@pytest.fixture(scope="module")
def site(site_factory: Any, kafka_ca: Path, mongodb_tls: Path) -> Any:
    made = site_factory(
        "single-node",
        {HOST: ADDRESS},
        groups={"mongodb": [HOST]},
        mongodb_distribution="ferretdb",
        mongodb_tls_enabled=True,
        mongodb_tls_certificate_src=f"{mongodb_tls}/{{{{ inventory_hostname }}}}.crt",
        mongodb_tls_key_src=f"{mongodb_tls}/{{{{ inventory_hostname }}}}.key",
        mongodb_tls_ca_src=str(mongodb_tls / "ca.crt"),
        # The services' Kafka clients: TLS as the kafka role's flag says, plus SASL.
        kafka_tls_enabled=True,
        kafka_tls_ca_src=str(kafka_ca),
        fraudwatch_kafka_sasl_username=KAFKA_USER,
    )
    vault_encrypt_keys(mongodb_tls, {HOST: ADDRESS}, made.vault_password_file)
    return made


#: The CA the test's clients check FerretDB's certificate against (set by `site`'s module).
TLS_CA: dict[str, str] = {}


@pytest.fixture(scope="module", autouse=True)
def _client_ca(mongodb_tls: Path) -> None:
    TLS_CA["tlsCAFile"] = str(mongodb_tls / "ca.crt")


@pytest.fixture(scope="module")
def vault_values(site: Any) -> dict[str, str]:
    """The run's throwaway vault (conftest.py), whose secrets this module checks."""
    secrets_of_the_run: dict[str, str] = site.secrets
    return secrets_of_the_run


def client(password: str | None, user: str = APP_USER) -> MongoClient[dict[str, Any]]:
    """A MongoDB client in the test, i.e. across the network and the host's firewall."""
    credentials: dict[str, Any] = (
        {"username": user, "password": password, "authSource": DATABASE} if password else {}
    )
    return MongoClient(
        ADDRESS,
        PORT,
        serverSelectionTimeoutMS=30000,
        connectTimeoutMS=30000,
        socketTimeoutMS=120000,
        tz_aware=True,
        tls=True,
        **TLS_CA,
        **credentials,
    )


def wait_for_port(port: int, attempts: int = 60) -> bool:
    """Whether the port accepts a connection from the test within `attempts` tries."""
    for _ in range(attempts):
        try:
            with socket.create_connection((ADDRESS, port), timeout=3):
                return True
        except OSError:
            time.sleep(2)
    return False


def call(method: str, path: str, token: str, body: object | None = None) -> dict[str, Any]:
    """One call to the intervention API from the test."""
    answer: dict[str, Any] = request_json(method, f"{INTERVENTION}{path}", body, token, timeout=120)
    return answer


def test_01_deploy_converges(first_deploy: Any) -> None:
    assert first_deploy.returncode == 0, first_deploy.explain()
    assert first_deploy.recap[HOST]["changed"] > 0


def test_02_second_deploy_changes_nothing(second_deploy: Any) -> None:
    assert second_deploy.returncode == 0, second_deploy.explain()
    assert second_deploy.changed() == {HOST: 0}, second_deploy.explain()


def test_ferretdb_serves_on_the_host_address_only(host: Any) -> None:
    assert_serving(host, "ferretdb", PORT, ADDRESS)
    assert host.process.get(user="ferretdb", comm="ferretdb")
    unit = host.file("/etc/systemd/system/ferretdb.service").content_string
    assert "--handler=sqlite" in unit and "--test-enable-new-auth" in unit
    # TLS only: the plaintext listener is off, the TLS one on the host's address.
    assert "--listen-addr= " in unit
    assert f"--listen-tls={ADDRESS}:{PORT}" in unit
    assert "--listen-tls-cert-file=/etc/mongodb-tls/node.pem" in unit
    key = host.file("/etc/mongodb-tls/node.pem")
    assert (key.user, key.group, key.mode) == ("root", "ferretdb", 0o640)
    assert "ANSIBLE_VAULT" not in key.content_string
    assert host.file("/etc/mongodb-tls").mode == 0o750
    assert "--debug-addr=-" in unit
    assert host.file("/opt/ferretdb/current").linked_to == "/opt/ferretdb/ferretdb-1.24.2"
    version = host.run("/opt/ferretdb/current/ferretdb --version").stdout
    assert "version: v1.24.2" in version
    # The application user's password: for systemd (root) only, never on the command line.
    secret = host.file("/etc/ferretdb/ferretdb.env")
    assert (secret.user, secret.group, secret.mode) == ("root", "root", 0o600)
    assert "FERRETDB_SETUP_PASSWORD=" in secret.content_string
    assert "ANSIBLE_VAULT" not in secret.content_string
    assert "--setup-password" not in unit
    assert str(PORT) in host.run("nft list table inet fraudwatch").stdout
    with socket.create_connection((ADDRESS, PORT), timeout=10):
        pass


def test_plaintext_clients_get_no_answer(
    host: Any, vault_values: dict[str, str], mongodb_tls: Path
) -> None:
    plain = MongoClient(
        ADDRESS,
        PORT,
        username=APP_USER,
        password=vault_values["vault_mongodb_app_password"],
        authSource=DATABASE,
        serverSelectionTimeoutMS=5000,
        connectTimeoutMS=5000,
    )
    try:
        with pytest.raises(ServerSelectionTimeoutError):
            plain.admin.command("ping")
    finally:
        plain.close()
    # A TLS client that does not trust the CA refuses the server's certificate.
    stranger = MongoClient(ADDRESS, PORT, tls=True, serverSelectionTimeoutMS=5000)
    try:
        with pytest.raises(ServerSelectionTimeoutError) as refused:
            stranger.admin.command("ping")
        assert "certificate verify failed" in str(refused.value)
    finally:
        stranger.close()
    # The certificate presented is the host's, issued by the run's CA.
    context = ssl.create_default_context(cafile=str(mongodb_tls / "ca.crt"))
    with (
        socket.create_connection((ADDRESS, PORT), timeout=30) as raw,
        context.wrap_socket(raw, server_hostname=ADDRESS) as tls,
    ):
        presented = ssl.DER_cert_to_PEM_cert(tls.getpeercert(binary_form=True))
    assert presented.strip() == (mongodb_tls / f"{HOST}.crt").read_text().strip()


def test_a_client_that_has_not_logged_in_is_refused(
    host: Any, vault_values: dict[str, str]
) -> None:
    anonymous = client(None)
    wrong = client("not-the-password")
    try:
        assert anonymous.admin.command("ping")["ok"] == 1.0  # hello/ping need no login
        with pytest.raises(OperationFailure) as refused:
            anonymous[DATABASE].probe.insert_one({"anonymous": True})
        assert refused.value.code == 13  # Unauthorized
        with pytest.raises(OperationFailure) as failed:
            wrong[DATABASE].probe.find_one()
        assert failed.value.code == 18  # AuthenticationFailed
    finally:
        anonymous.close()
        wrong.close()


def test_a_client_on_the_network_stores_and_reads_a_document(
    host: Any, vault_values: dict[str, str]
) -> None:
    app = client(vault_values["vault_mongodb_app_password"])
    try:
        inserted = app[DATABASE].probe.insert_one({"user_id": 42, "score": 0.97})
        found = app[DATABASE].probe.find_one({"_id": inserted.inserted_id})
        assert found is not None and found["score"] == 0.97
    finally:
        app.close()
    # Kept on disk (SQLite under the data directory), not in memory: it survives a restart.
    restarted = host.run("systemctl restart ferretdb")
    assert restarted.rc == 0, restarted.stderr
    assert wait_for_port(PORT), host.run("journalctl -u ferretdb -n 40 --no-pager").stdout
    assert host.file("/var/lib/mongodb/sqlite").is_directory
    again = client(vault_values["vault_mongodb_app_password"])
    try:
        found = again[DATABASE].probe.find_one({"user_id": 42})
        assert found is not None and found["score"] == 0.97
    finally:
        again.close()


def test_the_intervention_service_is_configured_for_mongodb(host: Any, mongodb_tls: Path) -> None:
    config = host.file("/etc/fraudwatch/intervention.toml")
    assert (config.user, config.group, config.mode) == ("root", "fraudwatch", 0o640)
    assert f'url = "mongodb://{APP_USER}:' in config.content_string
    assert (
        f"@{ADDRESS}:{PORT}/{DATABASE}?authSource={DATABASE}"
        "&tls=true&tlsCAFile=/etc/fraudwatch/mongodb-ca.pem"
    ) in config.content_string
    ca = host.file("/etc/fraudwatch/mongodb-ca.pem")
    assert (ca.user, ca.group, ca.mode) == ("root", "fraudwatch", 0o644)
    assert ca.content_string == (mongodb_tls / "ca.crt").read_text()
    assert "replicaSet" not in config.content_string  # the stand-in has no replica set
    environment = host.file("/etc/fraudwatch/fraudwatch.env").content_string
    assert "mongodb://" not in environment


def test_the_intervention_service_keeps_its_state_in_mongodb(
    host: Any, vault_values: dict[str, str]
) -> None:
    run_first_batch(host, ADDRESS, users=200, transactions=3000, days=3)
    # An analyst token, made with the CLI as the operator would: stored (hashed) in MongoDB.
    created = host.run(f"{FRAUDWATCH_AS_SERVICE_USER} tokens create --role analyst")
    assert created.rc == 0, created.stderr
    token = created.stdout.strip().splitlines()[-1]
    token_id = created.stdout.split("analyst token ", 1)[1].split()[0]
    # An authenticated call through the service: lock the top-ranked account.
    user_id = call("GET", "/v1/anomalies?page_size=1", token)["items"][0]["user_id"]
    reason = f"ansible test {secrets.token_hex(4)}"
    locked = call("POST", f"/v1/accounts/{user_id}/lock", token, {"reason": reason})
    assert locked["result"] == "applied", locked
    # Found from outside the host, in the database, where the service wrote it.
    db = client(vault_values["vault_mongodb_app_password"])
    try:
        stored = db[DATABASE].tokens.find_one({"token_id": token_id})
        assert stored is not None and stored["role"] == "analyst"
        assert token not in json.dumps(stored, default=str)  # only its hash is kept
        entry = db[DATABASE].audit.find_one({"action": "lock", "reason": reason})
        assert entry is not None, list(db[DATABASE].audit.find())
        assert entry["actor"] == f"token:{token_id}"
        assert entry["subject_id"] == str(user_id) and entry["result"] == "applied"
        state = db[DATABASE].state.find_one({"_id": f"account:{user_id}:locked"})
        assert state is not None and state["value"] is True
    finally:
        db.close()
    # And not in a SQLite file beside it.
    assert not host.file("/var/lib/fraudwatch/intervention.sqlite3").exists


def test_kafka_clients_get_tls_and_sasl_with_the_password_in_a_secret_file(
    host: Any, vault_values: dict[str, str], kafka_ca: Path
) -> None:
    environment = host.file("/etc/fraudwatch/fraudwatch.env")
    assert (environment.user, environment.group, environment.mode) == (
        "root",
        "fraudwatch",
        0o640,
    )
    settings = dict(
        line.split("=", 1)
        for line in environment.content_string.splitlines()
        if line and not line.startswith("#")
    )
    assert settings["FRAUDWATCH_KAFKA_SECURITY_PROTOCOL"] == "SASL_SSL"
    assert settings["FRAUDWATCH_KAFKA_SASL_MECHANISM"] == "SCRAM-SHA-512"
    assert settings["FRAUDWATCH_KAFKA_USERNAME"] == KAFKA_USER
    assert settings["FRAUDWATCH_KAFKA_CA_FILE"] == "/etc/fraudwatch/kafka-ca.pem"
    assert settings["FRAUDWATCH_SECRETS_DIR"] == "/etc/fraudwatch/secrets"
    assert "FRAUDWATCH_KAFKA_PASSWORD" not in settings
    password = vault_values["vault_fraudwatch_kafka_password"]
    assert password not in environment.content_string
    secret = host.file("/etc/fraudwatch/secrets/kafka-password")
    assert (secret.user, secret.group, secret.mode) == ("root", "fraudwatch", 0o640)
    assert host.file("/etc/fraudwatch/secrets").mode == 0o750
    assert host.file("/etc/fraudwatch/kafka-ca.pem").content_string == kafka_ca.read_text()
    # The product's own reading of it, as the service user with the services' environment.
    probe = (
        "import hashlib; from fraudwatch.streaming.kafka_security import KafkaSecurity as K; "
        "s = K.from_env(); print(s.protocol, s.mechanism, s.username, s.ca_file, "
        "hashlib.sha256(s.password.encode()).hexdigest())"
    )
    read = host.run(
        "runuser -u fraudwatch -- env $(grep -v '^#' /etc/fraudwatch/fraudwatch.env | xargs) "
        f"/opt/fraudwatch/current/bin/python -c {_shell_quote(probe)}"
    )
    assert read.rc == 0, read.stderr
    assert read.stdout.split() == [
        "SASL_SSL",
        "SCRAM-SHA-512",
        KAFKA_USER,
        "/etc/fraudwatch/kafka-ca.pem",
        hashlib.sha256(password.encode()).hexdigest(),
    ]


def _shell_quote(text: str) -> str:
    return "'" + text.replace("'", "'\"'\"'") + "'"


def test_the_application_password_is_kept_out_of_logs(
    first_deploy: Any, second_deploy: Any, vault_values: dict[str, str]
) -> None:
    for run in (first_deploy, second_deploy):
        for name in vault_values:
            secret = vault_values[name]
            assert secret not in run.output
            assert urllib.parse.quote(secret, safe="") not in run.output
