"""The Ceph role on one systemd host: monitor, memstore OSD and the RADOS gateway, with
cephx on and the gateway on HTTPS only (ceph_rgw_tls_enabled, a CA and certificate made for
this run), then an S3 round trip through the gateway with the vault's keys, from the test
(the client side of the network, through the host's firewall) with boto3 checking the
gateway's certificate. Last, deploy.yml's preflight of encrypted data directories: the test
host has no LUKS volume, so with fraudwatch_require_encrypted_data_dirs on the deploy stops
and names the directories.
"""

from __future__ import annotations

import json
import secrets
import socket
import ssl
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from test_single_node import assert_serving
from throwaway_pki import make_pki, vault_encrypt_keys

ADDRESS = "10.89.71.31"
HOST = "fraudwatch-1"
PORT = 7480
ENDPOINT = f"https://{ADDRESS}:{PORT}"


#: deploy.yml's arguments for the two convergence runs (tests/ansible/conftest.py).
DEPLOY_ARGS = ("--tags", "base,ceph")


@pytest.fixture(scope="module")
def tls_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A throwaway CA and the gateway host's certificate (IP SAN); its key vault-encrypted."""
    return make_pki(tmp_path_factory.mktemp("rgw-tls"), {HOST: ADDRESS}, "S3 gateway")


@pytest.fixture(scope="module")
def site(site_factory: Any, tls_dir: Path) -> Any:
    made = site_factory(
        "single-node",
        {HOST: ADDRESS},
        ceph_rgw_tls_enabled=True,
        ceph_rgw_tls_certificate_src=f"{tls_dir}/{{{{ inventory_hostname }}}}.crt",
        ceph_rgw_tls_key_src=f"{tls_dir}/{{{{ inventory_hostname }}}}.key",
        ceph_rgw_tls_ca_src=str(tls_dir / "ca.crt"),
    )
    vault_encrypt_keys(tls_dir, {HOST: ADDRESS}, made.vault_password_file)
    return made


def s3_client(access_key: str, secret_key: str, ca_file: Path) -> Any:
    """A plain S3 client, as the platform's jobs use it: path-style, signature v4, over HTTPS
    with the gateway's certificate checked against the run's CA."""
    return boto3.client(
        "s3",
        endpoint_url=ENDPOINT,
        verify=str(ca_file),
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


def platform_client(site: Any, tls_dir: Path) -> Any:
    """The S3 client of the platform's user, with the keys from the vault."""
    return s3_client(
        site.secrets["vault_ceph_s3_access_key"],
        site.secrets["vault_ceph_s3_secret_key"],
        tls_dir / "ca.crt",
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
    assert_serving(host, "ceph-radosgw@rgw.fraudwatch-1", PORT, ADDRESS)
    assert "auth_client_required = cephx" in host.file("/etc/ceph/ceph.conf").content_string
    assert host.file("/etc/ceph/ceph.client.admin.keyring").mode == 0o600
    status = host.run("ceph osd stat")
    assert "1 up" in status.stdout and "1 in" in status.stdout, status.stdout + status.stderr
    # The gateway's pools have their placement groups on the OSD.
    placed = host.run(f"ceph daemon osd.{osd_id} status")
    assert '"num_pgs": 0' not in placed.stdout, placed.stdout + placed.stderr


def test_the_platform_buckets_exist(site: Any, host: Any, tls_dir: Path) -> None:
    s3 = platform_client(site, tls_dir)
    names = {bucket["Name"] for bucket in s3.list_buckets()["Buckets"]}
    assert {"fraudwatch-raw", "fraudwatch-scored"} <= names


def test_ceph_s3_stores_and_returns_an_object(site: Any, host: Any, tls_dir: Path) -> None:
    s3 = platform_client(site, tls_dir)
    body = secrets.token_bytes(256 * 1024)
    s3.put_object(Bucket="fraudwatch-scored", Key="batch/2026-01-01/users.parquet", Body=body)
    got = s3.get_object(Bucket="fraudwatch-scored", Key="batch/2026-01-01/users.parquet")
    assert got["Body"].read() == body
    listed = s3.list_objects_v2(Bucket="fraudwatch-scored", Prefix="batch/")
    assert [o["Key"] for o in listed.get("Contents", [])] == ["batch/2026-01-01/users.parquet"]
    # The object is really in RADOS, not only in the gateway's memory.
    stored = host.run("rados -p default.rgw.buckets.data ls")
    assert "batch/2026-01-01/users.parquet" in stored.stdout, stored.stdout + stored.stderr


def test_ceph_s3_refuses_unknown_keys(site: Any, host: Any, tls_dir: Path) -> None:
    stranger = s3_client("NOSUCHKEY0000000000", secrets.token_urlsafe(30), tls_dir / "ca.crt")
    with pytest.raises(ClientError) as denied:
        stranger.get_object(Bucket="fraudwatch-scored", Key="batch/2026-01-01/users.parquet")
    assert denied.value.response["Error"]["Code"] in {"InvalidAccessKeyId", "AccessDenied"}


def test_the_gateway_serves_https_only_with_the_hosts_certificate(host: Any, tls_dir: Path) -> None:
    conf = host.file("/etc/ceph/ceph.conf").content_string
    assert f"rgw_frontends = beast ssl_endpoint={ADDRESS}:{PORT} " in conf
    assert " endpoint=" not in conf.replace("ssl_endpoint=", "")
    key = host.file("/etc/ceph/rgw-tls/node.pem")
    assert (key.user, key.group, key.mode) == ("root", "ceph", 0o640)
    assert "ANSIBLE_VAULT" not in key.content_string
    # The certificate presented is the host's, issued by the run's CA (checked by the context).
    context = ssl.create_default_context(cafile=str(tls_dir / "ca.crt"))
    with (
        socket.create_connection((ADDRESS, PORT), timeout=30) as raw,
        context.wrap_socket(raw, server_hostname=ADDRESS) as tls,
    ):
        assert tls.version() in {"TLSv1.2", "TLSv1.3"}
        presented = ssl.DER_cert_to_PEM_cert(tls.getpeercert(binary_form=True))
    assert presented.strip() == (tls_dir / f"{HOST}.crt").read_text().strip()
    # Plain HTTP gets no S3 answer.
    with pytest.raises((urllib.error.URLError, ConnectionError, OSError)) as refused:
        urllib.request.urlopen(f"http://{ADDRESS}:{PORT}/", timeout=30).read()
    assert not isinstance(refused.value, urllib.error.HTTPError)
    # A client that does not know the CA refuses the gateway.
    with (
        pytest.raises(ssl.SSLCertVerificationError),
        socket.create_connection((ADDRESS, PORT), timeout=30) as raw,
    ):
        ssl.create_default_context().wrap_socket(raw, server_hostname=ADDRESS)


def test_the_preflight_stops_on_data_directories_not_on_encrypted_devices(
    site: Any, host: Any
) -> None:
    """The test host's directories are on the container's file system, not on dm-crypt."""
    strict = site.playbook(
        "deploy.yml",
        "--tags",
        "base,ceph",
        "-e",
        json.dumps(
            {"fraudwatch_require_encrypted_data_dirs": True, "ceph_osd_objectstore": "bluestore"}
        ),
    )
    assert strict.returncode != 0
    assert strict.recap[HOST]["failed"] == 1, strict.explain()
    assert "not on a dm-crypt (LUKS) device" in strict.output, strict.explain()
    for directory in (
        "/var/lib/ceph",
        "/var/lib/ceph/osd-block.img",
        "/var/lib/kafka",
        "/var/lib/fraudwatch",
    ):
        assert f"{directory} (on " in strict.output, strict.explain()
    assert "cryptsetup luksFormat" in strict.output
    assert "fraudwatch_require_encrypted_data_dirs" in strict.output
    # It stopped before any role ran: nothing changed on the host.
    assert strict.recap[HOST]["changed"] == 0
    # Off (as in every other converge of this tier), the same deploy passes.
    relaxed = site.playbook("deploy.yml", "--tags", "base,ceph")
    assert relaxed.returncode == 0, relaxed.explain()
    assert relaxed.changed() == {HOST: 0}, relaxed.explain()
