"""The Ceph role on one systemd host: monitor, memstore OSD and the RADOS gateway, with
cephx on, then an S3 round trip through the gateway with the vault's keys, from the test
(the client side of the network, through the host's firewall) with boto3.
"""

from __future__ import annotations

import secrets
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from test_single_node import assert_serving

ADDRESS = "10.89.71.31"
HOST = "fraudwatch-1"
ENDPOINT = f"http://{ADDRESS}:7480"


#: deploy.yml's arguments for the two convergence runs (tests/ansible/conftest.py).
DEPLOY_ARGS = ("--tags", "base,ceph")


@pytest.fixture(scope="module")
def site(site_factory: Any) -> Any:
    return site_factory("single-node", {HOST: ADDRESS})


def s3_client(access_key: str, secret_key: str) -> Any:
    """A plain S3 client, as the platform's jobs use it: path-style, signature v4."""
    return boto3.client(
        "s3",
        endpoint_url=ENDPOINT,
        aws_access_key_id=access_key,
        aws_secret_access_key=secret_key,
        region_name="us-east-1",
        config=Config(
            s3={"addressing_style": "path"},
            retries={"max_attempts": 5, "mode": "standard"},
            # radosgw 16 rejects the SDK's default streaming checksums (HTTP 411).
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        ),
    )


def platform_client(site: Any) -> Any:
    """The S3 client of the platform's user, with the keys from the vault."""
    return s3_client(
        site.secrets["vault_ceph_s3_access_key"], site.secrets["vault_ceph_s3_secret_key"]
    )


def test_01_deploy_converges(first_deploy: Any) -> None:
    assert first_deploy.returncode == 0, first_deploy.explain()
    assert first_deploy.recap[HOST]["changed"] > 0


def test_02_second_deploy_changes_nothing(second_deploy: Any) -> None:
    assert second_deploy.returncode == 0, second_deploy.explain()
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
    # The gateway's pools have their placement groups on the OSD.
    placed = host.run(f"ceph daemon osd.{osd_id} status")
    assert '"num_pgs": 0' not in placed.stdout, placed.stdout + placed.stderr


def test_the_platform_buckets_exist(site: Any, host: Any) -> None:
    s3 = platform_client(site)
    names = {bucket["Name"] for bucket in s3.list_buckets()["Buckets"]}
    assert {"fraudwatch-raw", "fraudwatch-scored"} <= names


def test_ceph_s3_stores_and_returns_an_object(site: Any, host: Any) -> None:
    s3 = platform_client(site)
    body = secrets.token_bytes(256 * 1024)
    s3.put_object(Bucket="fraudwatch-scored", Key="batch/2026-01-01/users.parquet", Body=body)
    got = s3.get_object(Bucket="fraudwatch-scored", Key="batch/2026-01-01/users.parquet")
    assert got["Body"].read() == body
    listed = s3.list_objects_v2(Bucket="fraudwatch-scored", Prefix="batch/")
    assert [o["Key"] for o in listed.get("Contents", [])] == ["batch/2026-01-01/users.parquet"]
    # The object is really in RADOS, not only in the gateway's memory.
    stored = host.run("rados -p default.rgw.buckets.data ls")
    assert "batch/2026-01-01/users.parquet" in stored.stdout, stored.stdout + stored.stderr


def test_ceph_s3_refuses_unknown_keys(site: Any, host: Any) -> None:
    stranger = s3_client("NOSUCHKEY0000000000", secrets.token_urlsafe(30))
    with pytest.raises(ClientError) as denied:
        stranger.get_object(Bucket="fraudwatch-scored", Key="batch/2026-01-01/users.parquet")
    assert denied.value.response["Error"]["Code"] in {"InvalidAccessKeyId", "AccessDenied"}
