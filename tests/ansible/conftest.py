"""Fixtures of the ansible tier: the host image, the artefact mirror and converge runs.

Ansible runs against the sample inventories exactly as shipped, plus a second inventory the
test writes: it maps the same host names onto the booted containers, points them at the
site's internal package repository and artefact mirror (the hosts are air-gapped) and sets only
what a container needs differently (a clock it may not set, small JVM heaps).
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).parent))

import artifact_mirror
import debian_rootfs
import package_repository
import systemd_hosts

REPO_ROOT = Path(__file__).resolve().parents[2]
ANSIBLE_DIR = REPO_ROOT / "ansible"
SAMPLE_INVENTORIES = ANSIBLE_DIR / "inventories" / "sample"
BIN_DIR = Path(sys.executable).parent
RECAP = re.compile(
    r"^(?P<host>\S+)\s+:\s+ok=(?P<ok>\d+)\s+changed=(?P<changed>\d+)\s+unreachable=(?P<unreachable>\d+)"
    r"\s+failed=(?P<failed>\d+)",
    re.M,
)


def request_json(
    method: str, url: str, body: object | None = None, token: str | None = None, timeout: int = 60
) -> Any:
    """One JSON call from the test to a host, i.e. across the network and the host's firewall."""
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(
        url,
        method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers=headers,
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.load(response)


@dataclass(frozen=True)
class PlaybookRun:
    """The outcome of one ansible-playbook run."""

    returncode: int
    output: str
    recap: dict[str, dict[str, int]]

    def changed(self) -> dict[str, int]:
        return {host: counts["changed"] for host, counts in self.recap.items()}

    def explain(self) -> str:
        """The end of the output, for assertion messages."""
        return self.output[-6000:]


@dataclass(frozen=True)
class Site:
    """Booted hosts plus the inventories and vault a playbook runs with."""

    hosts: list[systemd_hosts.SystemdHost]
    repository_container: str
    sample: Path
    inventory: Path
    vault_password_file: Path
    secrets: dict[str, str]

    def playbook(self, name: str, *args: str) -> PlaybookRun:
        """Run a playbook of ansible/ on these hosts, as an operator would."""
        env = {
            **os.environ,
            "ANSIBLE_CONFIG": str(ANSIBLE_DIR / "ansible.cfg"),
            "ANSIBLE_NOCOLOR": "1",
            "ANSIBLE_HOST_KEY_CHECKING": "False",
            "PATH": f"{BIN_DIR}{os.pathsep}{os.environ.get('PATH', '')}",
        }
        proc = subprocess.run(
            [
                str(BIN_DIR / "ansible-playbook"),
                "-i",
                str(self.sample),
                "-i",
                str(self.inventory),
                "--vault-password-file",
                str(self.vault_password_file),
                name,
                *args,
            ],
            cwd=ANSIBLE_DIR,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        output = proc.stdout + proc.stderr
        recap = {
            m["host"]: {k: int(m[k]) for k in ("ok", "changed", "unreachable", "failed")}
            for m in RECAP.finditer(output)
        }
        return PlaybookRun(proc.returncode, output, recap)


@pytest.fixture(scope="session")
def host_image() -> str:
    """The podman image of a fresh Debian 12 host (built with debootstrap on first use)."""
    if shutil.which("podman") is None:
        pytest.fail("podman is not installed: run tests/ansible/install-host-tools.sh")
    return debian_rootfs.ensure_host_image()


@pytest.fixture(scope="session")
def repository_dir(host_image: str) -> Path:
    """The signed Debian package repository built with the host image (package_repository.py)."""
    return debian_rootfs.repository_dir()


def repository_address(hosts: dict[str, str]) -> str:
    """The package repository's address: .N9 of the first host's .N0-.N8 block."""
    prefix, last = next(iter(hosts.values())).rsplit(".", 1)
    address = f"{prefix}.{int(last) // 10 * 10 + 9}"
    assert address not in hosts.values(), f"{address} is reserved for the package repository"
    return address


@pytest.fixture(scope="session")
def mirror_dir() -> Path:
    """The air-gapped artefact mirror: Kafka from Maven Central, fraudwatch wheels."""
    return artifact_mirror.build_mirror()


def make_site(
    tmp: Path,
    image: str,
    label: str,
    sample: str,
    hosts: dict[str, str],
    mirror: Path,
    repository: Path,
    overrides: dict[str, object] | None = None,
    groups: dict[str, list[str]] | None = None,
) -> Site:
    """Boot one container per host name (name -> address) and write the test inventory.

    `groups` adds hosts to inventory groups beyond the sample's (group -> host names).
    """
    systemd_hosts.ensure_network()
    repository_container = f"fwtest-{label}-repository"
    repository_uri = systemd_hosts.serve_repository(
        image, repository_container, repository_address(hosts), repository
    )
    booted = [
        systemd_hosts.boot(image, name, f"fwtest-{label}-{name}", address)
        for name, address in hosts.items()
    ]
    nofile = systemd_hosts.nofile_limit(booted[0])
    inventory = tmp / "inventory"
    (inventory / "group_vars" / "all").mkdir(parents=True)
    (inventory / "hosts.yml").write_text(
        yaml.safe_dump(
            {
                "all": {
                    "hosts": {
                        host.name: {
                            "ansible_connection": "containers.podman.podman",
                            "ansible_host": host.container,
                            "node_address": host.address,
                        }
                        for host in booted
                    },
                    "children": {
                        group: {"hosts": dict.fromkeys(members)}
                        for group, members in (groups or {}).items()
                    },
                }
            }
        )
    )
    container_settings: dict[str, object] = {
        # The hosts have no route out: Debian packages come from the internal repository,
        # everything else from the artefact mirror directory.
        "base_apt_mirror_sources": [
            {
                "uris": repository_uri,
                "suites": [debian_rootfs.SUITE],
                "components": [package_repository.COMPONENT],
                "signing_key": package_repository.public_key(repository),
            }
        ],
        # A container shares the machine's clock and a read-only /proc/sys.
        "base_time_sync_sets_clock": False,
        "base_sysctl_apply": False,
        "base_ntp_servers": ["192.0.2.123"],
        "artifact_mirror_dir": str(mirror),
        "kafka_heap_size": "256m",
        "kafka_limit_nofile": nofile,
        "elasticsearch_limit_nofile": nofile,
        "ceph_mgr_enabled": False,
        "ceph_osd_objectstore": "memstore",
        "ceph_osd_memstore_bytes": 536870912,
        "ceph_osd_memory_target": 939524096,
        # The hosts' root file system is the (shared) machine's: a monitor refuses to start
        # below 5 % free by default, whatever the absolute space left.
        "ceph_conf_overrides": {"mon": {"mon_data_avail_crit": 1, "mon_data_avail_warn": 2}},
        "fraudwatch_extras": artifact_mirror.fraudwatch_extras(),
        # The sample inventories turn on TLS everywhere and require encrypted data
        # directories (deploy.yml checks that an inventory decides). Test hosts have no LUKS
        # volumes and no certificates unless a module makes them: off here, and on in the
        # modules that give the certificates (test_kafka_cluster.py, test_mongodb.py,
        # test_ceph_gateway.py) or test the check itself.
        "kafka_tls_enabled": False,
        "mongodb_tls_enabled": False,
        "ceph_rgw_tls_enabled": False,
        "fraudwatch_require_encrypted_data_dirs": False,
        **(overrides or {}),
    }
    (inventory / "group_vars" / "all" / "containers.yml").write_text(
        yaml.safe_dump(container_settings)
    )
    # A throwaway vault: password and secrets made up for this run only.
    vault_password_file = tmp / "vault-password"
    vault_password_file.write_text(secrets.token_urlsafe(24))
    vault_password_file.chmod(0o600)
    values = {
        "vault_fraudwatch_hook_secret": secrets.token_urlsafe(32),
        "vault_ceph_s3_access_key": secrets.token_hex(10).upper(),
        "vault_ceph_s3_secret_key": secrets.token_urlsafe(30),
        "vault_elasticsearch_password": secrets.token_urlsafe(20),
        "vault_mongodb_admin_password": secrets.token_urlsafe(20),
        "vault_grafana_admin_password": secrets.token_urlsafe(20),
        "vault_airflow_admin_password": secrets.token_urlsafe(20),
        "vault_airflow_jwt_secret": secrets.token_urlsafe(48),
        "vault_spark_auth_secret": secrets.token_urlsafe(32),
        # With the characters a URL, a TOML string and a systemd environment file must escape.
        "vault_mongodb_app_password": secrets.token_urlsafe(18) + '/:@%"\\$',
        "vault_fraudwatch_kafka_password": secrets.token_urlsafe(24),
    }
    vault_file = inventory / "group_vars" / "all" / "vault.yml"
    vault_file.write_text(yaml.safe_dump(values))
    subprocess.run(
        [
            str(BIN_DIR / "ansible-vault"),
            "encrypt",
            "--vault-password-file",
            str(vault_password_file),
            str(vault_file),
        ],
        check=True,
        capture_output=True,
    )
    return Site(
        booted,
        repository_container,
        SAMPLE_INVENTORIES / sample,
        inventory,
        vault_password_file,
        values,
    )


@pytest.fixture(scope="module")
def site_factory(
    request: pytest.FixtureRequest, host_image: str, repository_dir: Path, mirror_dir: Path
) -> Iterator[object]:
    """Make sites for one test module; their containers are removed when it ends."""
    made: list[Site] = []
    # Not pytest's tmp_path: its numbered directories are pruned by any other pytest session
    # of the same user, which may run while a converge reads the inventory.
    workdir = Path(tempfile.mkdtemp(prefix="fraudwatch-ansible-"))

    def factory(
        sample: str,
        hosts: dict[str, str],
        groups: dict[str, list[str]] | None = None,
        **overrides: object,
    ) -> Site:
        tmp = workdir / sample
        tmp.mkdir()
        label = request.module.__name__.removeprefix("test_").replace("_", "-")
        site = make_site(
            tmp, host_image, label, sample, hosts, mirror_dir, repository_dir, overrides, groups
        )
        made.append(site)
        return site

    yield factory
    # FRAUDWATCH_KEEP_HOSTS=1 leaves the containers running to debug a failed converge
    # (`podman exec -it fwtest-... bash`).
    if not os.environ.get("FRAUDWATCH_KEEP_HOSTS"):
        for site in made:
            systemd_hosts.remove(*site.hosts)
            systemd_hosts.remove_container(site.repository_container)
        shutil.rmtree(workdir, ignore_errors=True)


# --- converge twice, then inspect: each test module sets DEPLOY_ARGS and its own `site` ------
@pytest.fixture(scope="module")
def first_deploy(request: pytest.FixtureRequest, site: Any) -> Any:
    return site.playbook("deploy.yml", *request.module.DEPLOY_ARGS)


@pytest.fixture(scope="module")
def second_deploy(request: pytest.FixtureRequest, site: Any, first_deploy: Any) -> Any:
    """The same deploy again: the tests assert it changes nothing."""
    assert first_deploy.returncode == 0, first_deploy.explain()
    return site.playbook("deploy.yml", *request.module.DEPLOY_ARGS)


@pytest.fixture(scope="module")
def host(site: Any, second_deploy: Any) -> Any:
    """testinfra on the site's first host, after both deploys succeeded."""
    import testinfra

    assert second_deploy.returncode == 0, second_deploy.explain()
    return testinfra.get_host(f"podman://{site.hosts[0].container}")
