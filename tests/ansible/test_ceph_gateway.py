"""The Ceph role on one systemd host: monitor, memstore OSD and the RADOS gateway, with
cephx on, then an S3 round trip through the gateway with the vault's keys.
"""

from __future__ import annotations

from typing import Any

import pytest
import testinfra
from test_single_node import assert_serving

ADDRESS = "10.89.71.31"
HOST = "fraudwatch-1"


@pytest.fixture(scope="module")
def site(site_factory: Any) -> Any:
    return site_factory("single-node", {HOST: ADDRESS})


@pytest.fixture(scope="module")
def first_deploy(site: Any) -> Any:
    return site.playbook("deploy.yml", "--tags", "base,ceph")


@pytest.fixture(scope="module")
def second_deploy(site: Any, first_deploy: Any) -> Any:
    assert first_deploy.returncode == 0, first_deploy.explain()
    return site.playbook("deploy.yml", "--tags", "base,ceph")


@pytest.fixture(scope="module")
def host(site: Any, second_deploy: Any) -> Any:
    assert second_deploy.returncode == 0, second_deploy.explain()
    return testinfra.get_host(f"podman://{site.hosts[0].container}")


def test_01_deploy_converges(first_deploy: Any) -> None:
    assert first_deploy.returncode == 0, first_deploy.explain()


def test_02_second_deploy_changes_nothing(second_deploy: Any) -> None:
    assert second_deploy.changed() == {HOST: 0}, second_deploy.explain()


def test_ceph_daemons_run_with_cephx(host: Any) -> None:
    assert host.service("ceph-mon@fraudwatch-1").is_running
    assert host.service("ceph-mon@fraudwatch-1").is_enabled
    osd_id = host.file("/etc/ceph/fraudwatch-osd-id").content_string.strip()
    assert host.service(f"ceph-osd@{osd_id}").is_running
    assert host.service(f"ceph-osd@{osd_id}").is_enabled
    assert_serving(host, "ceph-radosgw@rgw.fraudwatch-1", 7480, ADDRESS)
    assert "auth_client_required = cephx" in host.file("/etc/ceph/ceph.conf").content_string
    assert host.file("/etc/ceph/ceph.client.admin.keyring").mode == 0o600
    status = host.run("ceph osd stat")
    assert "1 up" in status.stdout and "1 in" in status.stdout, status.stdout + status.stderr


def test_ceph_s3_stores_and_returns_an_object(host: Any, site: Any) -> None:
    keys = (
        f"--access_key={site.secrets['vault_ceph_s3_access_key']} "
        f"--secret_key={site.secrets['vault_ceph_s3_secret_key']} "
        f"--host={ADDRESS}:7480 --host-bucket={ADDRESS}:7480 --no-ssl --signature-v2"
    )
    host.run("echo 'scored batch 2026-01-01' > /tmp/object.txt")
    made = host.run(f"s3cmd {keys} mb s3://fraudwatch-test")
    assert made.rc == 0, made.stderr
    put = host.run(f"s3cmd {keys} put /tmp/object.txt s3://fraudwatch-test/batch/object.txt")
    assert put.rc == 0, put.stderr
    got = host.run(f"s3cmd {keys} get --force s3://fraudwatch-test/batch/object.txt /tmp/back.txt")
    assert got.rc == 0, got.stderr
    assert host.file("/tmp/back.txt").content_string == "scored batch 2026-01-01\n"
    denied = host.run(
        f"s3cmd --access_key=NOSUCHKEY --secret_key=wrong --host={ADDRESS}:7480 "
        f"--host-bucket={ADDRESS}:7480 --no-ssl ls s3://fraudwatch-test"
    )
    assert denied.rc != 0
