"""The start/stop scripts touch only what they started, and say clearly what is wrong."""

from __future__ import annotations

import subprocess

import pytest

from tests.servers import kafka, port_from_env
from tests.servers.__main__ import main as services_cli
from tests.servers.process_control import is_running


def test_stop_leaves_a_recycled_pid_alone(tmp_path):
    """A stale PID file whose PID now belongs to another program must not get that program killed."""
    bystander = subprocess.Popen(["sleep", "60"])
    try:
        (tmp_path / "kafka.pid").write_text(f"{bystander.pid}\n")
        kafka.stop(tmp_path)
        assert is_running(bystander.pid)
        assert not (tmp_path / "kafka.pid").exists()
    finally:
        bystander.kill()
        bystander.wait()


def test_port_override_must_be_a_port(monkeypatch):
    monkeypatch.setenv("FRAUDWATCH_KAFKA_PORT", "ninety-ninety-two")
    with pytest.raises(ValueError, match="FRAUDWATCH_KAFKA_PORT='ninety-ninety-two' is not a port"):
        port_from_env("kafka", 9092)
    monkeypatch.setenv("FRAUDWATCH_KAFKA_PORT", "19092")
    assert port_from_env("kafka", 9092) == 19092


def test_unknown_server_name_is_refused(tmp_path):
    with pytest.raises(SystemExit, match="unknown server"):
        services_cli(["up", "zookeeper", "--state-dir", str(tmp_path)])


def test_status_reports_stopped_servers(tmp_path, capsys):
    assert services_cli(["status", "kafka", "elasticsearch", "--state-dir", str(tmp_path)]) == 0
    assert capsys.readouterr().out.splitlines() == ["kafka: stopped", "elasticsearch: stopped"]
