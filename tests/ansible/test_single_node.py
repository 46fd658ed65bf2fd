"""The single-node sample inventory, deployed from empty onto one systemd host, air-gapped.

Reads like the runbook: deploy, deploy again (nothing may change), then check each component
the way an operator would — service up and enabled, listening on the host's address only,
configured as intended, and doing its job. Ceph has its own module (test_ceph_gateway.py).
"""

from __future__ import annotations

import socket
import stat
import tarfile
from pathlib import Path
from typing import Any

import pytest

from tests.infra.product_contract import product_topics

#: The topics the product reads and writes (from its source, not a copy of the role's list).
TOPICS = sorted(product_topics().event_topics | {product_topics().dead_letter_topic})
ADDRESS = "10.89.71.11"
HOST = "fraudwatch-1"


#: deploy.yml's arguments for the two convergence runs (tests/ansible/conftest.py).
DEPLOY_ARGS = ("--skip-tags", "ceph")


@pytest.fixture(scope="module")
def site(site_factory: Any) -> Any:
    return site_factory("single-node", {HOST: ADDRESS})


def reachable(port: int) -> bool:
    """Whether a TCP connection from outside the host (the test network) gets through."""
    try:
        with socket.create_connection((ADDRESS, port), timeout=3):
            return True
    except OSError:
        return False


def test_01_deploy_converges_from_an_empty_host(first_deploy: Any) -> None:
    assert first_deploy.returncode == 0, first_deploy.explain()
    assert first_deploy.recap[HOST]["failed"] == 0
    assert first_deploy.recap[HOST]["changed"] > 0


def test_02_second_deploy_changes_nothing(second_deploy: Any) -> None:
    assert second_deploy.returncode == 0, second_deploy.explain()
    assert second_deploy.changed() == {HOST: 0}, second_deploy.explain()


def assert_serving(host: Any, unit: str, port: int, address: str = ADDRESS) -> None:
    service = host.service(unit)
    assert service.is_running, host.run(f"journalctl -u {unit} -n 40 --no-pager").stdout
    assert service.is_enabled
    assert host.socket(f"tcp://{address}:{port}").is_listening
    assert not host.socket(f"tcp://0.0.0.0:{port}").is_listening
    assert not host.socket(f"tcp://127.0.0.1:{port}").is_listening


# --- base ---------------------------------------------------------------------------------


def test_firewall_opens_only_the_ports_of_this_hosts_components(host: Any) -> None:
    assert host.service("nftables").is_enabled
    ruleset = host.run("nft list table inet fraudwatch").stdout
    assert "policy drop" in ruleset
    # Kafka is open to the network; a port nothing declared is not, even with a listener.
    assert reachable(9092)
    host.run(
        "systemd-run --unit probe-listener python3 -c "
        f"\"import socket,time;s=socket.socket();s.bind(('{ADDRESS}',5555));"
        's.listen();time.sleep(60)"'
    )
    assert host.socket(f"tcp://{ADDRESS}:5555").is_listening
    assert not reachable(5555)
    host.run("systemctl stop probe-listener")


def test_packages_come_from_the_signed_internal_repository(host: Any) -> None:
    # The host's only package source is the one base_apt_mirror_sources names, verified with
    # the key the role installed; what the roles installed came from it.
    sources = host.file("/etc/apt/sources.list.d/fraudwatch-mirror.sources").content_string
    key = "/etc/apt/keyrings/fraudwatch-mirror-0.asc"
    assert f"Signed-By: {key}" in sources
    assert "BEGIN PGP PUBLIC KEY BLOCK" in host.file(key).content_string
    repository = sources.split("URIs: ", 1)[1].split()[0].rstrip("/")
    for package in ("prometheus", "openjdk-17-jre-headless", "nftables"):
        policy = host.run(f"apt-cache policy {package}").stdout
        installed = policy.split("Installed: ", 1)[1].split()[0]
        assert f"*** {installed} 500\n        500 {repository} bookworm/main" in policy, policy
    # apt checks the signature: the same repository trusted only with Debian's own keys is
    # refused.
    wrong_key = host.run(
        "mkdir -p /tmp/apt-probe/lists/partial && "
        f"echo 'deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] {repository}/ "
        "bookworm main' > /tmp/apt-probe/sources.list && "
        "apt-get update -o Dir::Etc::SourceList=/tmp/apt-probe/sources.list "
        "-o Dir::Etc::SourceParts=/nonexistent -o Dir::State::Lists=/tmp/apt-probe/lists"
    )
    host.run("rm -rf /tmp/apt-probe")
    assert wrong_key.rc != 0
    assert "NO_PUBKEY" in wrong_key.stdout + wrong_key.stderr, wrong_key.stdout + wrong_key.stderr


def test_time_sync_runs_against_the_configured_servers(host: Any) -> None:
    assert host.service("chrony").is_running
    assert host.service("chrony").is_enabled
    assert "server 192.0.2.123 iburst" in host.file("/etc/chrony/chrony.conf").content_string


def test_kernel_settings_and_log_rotation_are_in_place(host: Any) -> None:
    sysctl = host.file("/etc/sysctl.d/60-fraudwatch.conf").content_string
    assert "vm.max_map_count=262144" in sysctl
    assert "net.core.somaxconn=4096" in sysctl
    rotation = host.file("/etc/logrotate.d/fraudwatch")
    assert rotation.contains("/var/log/fraudwatch/")
    assert host.run("logrotate --debug /etc/logrotate.d/fraudwatch").rc == 0


# --- kafka --------------------------------------------------------------------------------


def kafka_tool(host: Any, cmd: str) -> Any:
    return host.run(f"/opt/kafka/bin/kafka-tool {cmd}")


def test_kafka_serves_on_the_host_address_only(host: Any) -> None:
    assert_serving(host, "kafka", 9092)
    config = host.file("/etc/kafka/server.properties").content_string
    assert "process.roles=broker,controller" in config
    assert f"controller.quorum.voters=1@{ADDRESS}:9093" in config
    assert host.file("/opt/kafka/current").linked_to == "/opt/kafka/kafka-4.0.0"


def test_kafka_has_the_platform_topics_and_carries_messages(host: Any) -> None:
    bootstrap = f"--bootstrap-server {ADDRESS}:9092"
    topics = kafka_tool(host, f"org.apache.kafka.tools.TopicCommand {bootstrap} --list")
    assert set(TOPICS) <= set(topics.stdout.split())
    sent = ["tx-1", "tx-2", "tx-3"]
    produced = host.run(
        f"printf '%s\\n' {' '.join(sent)} | /opt/kafka/bin/kafka-tool "
        f"org.apache.kafka.tools.ConsoleProducer {bootstrap} --topic fraudwatch.transactions"
    )
    assert produced.rc == 0, produced.stderr
    consumed = kafka_tool(
        host,
        f"org.apache.kafka.tools.consumer.ConsoleConsumer {bootstrap} --topic fraudwatch.transactions "
        "--from-beginning --max-messages 3 --timeout-ms 60000",
    )
    assert sorted(consumed.stdout.split()) == sent, consumed.stderr


# --- prometheus ---------------------------------------------------------------------------


def test_prometheus_scrapes_the_node_exporter(host: Any) -> None:
    assert_serving(host, "prometheus", 9090)
    assert_serving(host, "prometheus-node-exporter", 9100)
    assert reachable(9090) and reachable(9100)
    query = host.run(
        f"curl -sf --retry 20 --retry-delay 3 --retry-all-errors "
        f"'http://{ADDRESS}:9090/api/v1/query?query=up%7Bjob%3D%22node%22%7D'"
    )
    assert query.rc == 0, query.stderr
    # Wait for the first scrape (30 s interval) to have happened.
    result = host.run(
        "for i in $(seq 60); do out=$(curl -sf "
        f"'http://{ADDRESS}:9090/api/v1/query?query=up%7Bjob%3D%22node%22%7D'); "
        'echo "$out" | grep -q \'"1"\\]\' && { echo "$out"; exit 0; }; sleep 2; done; exit 1'
    )
    assert result.rc == 0, result.stdout
    assert f"{ADDRESS}:9100" in result.stdout


# --- fraudwatch ---------------------------------------------------------------------------


def test_fraudwatch_is_installed_from_the_mirror_into_its_venv(host: Any) -> None:
    assert host.file("/opt/fraudwatch/current").linked_to == "/opt/fraudwatch/venv-0.1.0"
    version = host.run(
        "/opt/fraudwatch/current/bin/python -c "
        "'import importlib.metadata as m; print(m.version(\"fraudwatch\"))'"
    )
    assert version.stdout.strip() == "0.1.0"
    config = host.file("/etc/fraudwatch/intervention.toml")
    assert config.group == "fraudwatch" and config.mode == 0o640
    assert 'hmac_secret = "' in config.content_string


def test_batch_scoring_is_scheduled(host: Any) -> None:
    timer = host.service("fraudwatch-score.timer")
    assert timer.is_enabled and timer.is_running
    assert (
        "fraudwatch score"
        in host.file("/etc/systemd/system/fraudwatch-score.service").content_string
    )


FRAUDWATCH_AS_SERVICE_USER = (
    "runuser -u fraudwatch -- env FRAUDWATCH_HOME=/var/lib/fraudwatch "
    "FRAUDWATCH_CONFIG=/etc/fraudwatch/intervention.toml /opt/fraudwatch/current/bin/fraudwatch"
)


def run_first_batch(host: Any, address: str, users: int, transactions: int, days: int) -> None:
    """Generate a raw day range, run the batch scoring unit, and wait for the intervention
    service it brings up on `address`."""
    generated = host.run(
        f"{FRAUDWATCH_AS_SERVICE_USER} generate --out /var/lib/fraudwatch/raw --users {users} "
        f"--transactions {transactions} --days {days} --overwrite"
    )
    assert generated.rc == 0, generated.stdout[-2000:] + generated.stderr[-2000:]
    scored = host.run("systemctl start fraudwatch-score.service")
    assert scored.rc == 0, host.run("journalctl -u fraudwatch-score -n 30 --no-pager").stdout
    assert host.file("/var/lib/fraudwatch/scored/users.parquet").exists
    up = host.run(
        f"curl -sf --retry 60 --retry-delay 2 --retry-all-errors http://{address}:8000/health"
    )
    assert up.rc == 0, host.run("journalctl -u fraudwatch-intervention -n 40 --no-pager").stdout
    assert_serving(host, "fraudwatch-intervention", 8000, address)


def test_the_first_batch_run_brings_up_the_intervention_service(host: Any) -> None:
    # A fresh host has no results yet: the service waits for the first batch run.
    assert not host.service("fraudwatch-intervention").is_running
    run_first_batch(host, ADDRESS, users=400, transactions=8000, days=7)


def test_intervention_service_answers_health_and_authenticated_calls(host: Any) -> None:
    assert_serving(host, "fraudwatch-intervention", 8000)
    health = host.run(
        f"curl -sf --retry 20 --retry-delay 2 --retry-all-errors http://{ADDRESS}:8000/health"
    )
    assert health.rc == 0, health.stderr
    created = host.run(f"{FRAUDWATCH_AS_SERVICE_USER} tokens create --role analyst")
    assert created.rc == 0, created.stderr
    token = created.stdout.strip().splitlines()[-1]
    anonymous = host.run(f"curl -s -o /dev/null -w '%{{http_code}}' http://{ADDRESS}:8000/v1/audit")
    assert anonymous.stdout in {"401", "403"}
    authorised = host.run(
        f"curl -s -o /dev/null -w '%{{http_code}}' -H 'Authorization: Bearer {token}' "
        f"http://{ADDRESS}:8000/v1/audit"
    )
    assert authorised.stdout == "200"


def test_streaming_scorer_waits_for_a_model(host: Any) -> None:
    # `fraudwatch stream` needs a fitted model version (fraudwatch_stream_models_dir): until the
    # inventory names one, the unit is installed but not enabled.
    unit = host.file("/etc/systemd/system/fraudwatch-stream.service")
    assert "fraudwatch stream --models-dir" in unit.content_string
    assert not host.service("fraudwatch-stream").is_enabled


# --- backup and decommission (last: they change the host) ----------------------------------


def test_backup_fetches_configuration_and_state_to_the_controller(
    site: Any, host: Any, tmp_path: Path
) -> None:
    backup = site.playbook("backup.yml", "-e", f"backup_root={tmp_path}")
    assert backup.returncode == 0, backup.explain()
    archives = list((tmp_path / HOST).glob("*.tar.gz"))
    assert len(archives) == 1, archives
    assert stat.S_IMODE(archives[0].stat().st_mode) == 0o600  # it holds secrets
    with tarfile.open(archives[0]) as archive:
        names = {name.lstrip("/") for name in archive.getnames()}
        state = archive.extractfile(
            next(m for m in archive.getmembers() if m.name.endswith("intervention.sqlite3"))
        )
        assert state is not None
        saved_state = state.read()
    for wanted in (
        "etc/kafka/server.properties",
        "var/lib/kafka/data/meta.properties",
        "etc/fraudwatch/intervention.toml",
        "etc/prometheus/prometheus.yml",
    ):
        assert any(name.endswith(wanted) for name in names), (wanted, sorted(names)[:20])
    # The intervention service's state as it was: the tokens made above are in it.
    assert saved_state.startswith(b"SQLite format 3")
    assert not host.file("/var/tmp/fraudwatch-backup.tar.gz").exists


def test_decommission_needs_the_hosts_named_then_removes_the_services(site: Any, host: Any) -> None:
    refused = site.playbook("decommission.yml", "-e", "decommission_confirm=some-other-host")
    assert refused.returncode != 0
    assert "decommission_confirm=fraudwatch-1" in refused.output
    assert host.service("kafka").is_running  # nothing was touched

    done = site.playbook("decommission.yml", "-e", f"decommission_confirm={HOST}")
    assert done.returncode == 0, done.explain()
    for unit in ("kafka", "fraudwatch-intervention", "prometheus", "prometheus-node-exporter"):
        assert not host.service(unit).is_running, unit
        assert not host.service(unit).is_enabled, unit
    assert host.run("systemctl is-enabled fraudwatch-score.timer").rc != 0
    assert "fraudwatch-score" not in host.run("systemctl list-timers --all").stdout
    for gone in ("/etc/systemd/system/kafka.service", "/opt/kafka", "/opt/fraudwatch"):
        assert not host.file(gone).exists, gone
    # Data is kept unless decommission_wipe_data=true.
    assert host.file("/var/lib/kafka/data/meta.properties").exists
    assert host.file("/var/lib/fraudwatch/intervention.sqlite3").exists
    assert not reachable(9092) and not reachable(8000)
