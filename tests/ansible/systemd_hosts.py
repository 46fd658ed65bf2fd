"""Systemd hosts for the Ansible tests: podman containers booted from the debootstrapped rootfs.

Each host is a container running systemd as PID 1 on a private podman network with no route
out (`--internal`: the hosts are air-gapped, as the tests intend), reachable by Ansible and
testinfra through podman itself. podman runs with the runc runtime and cgroupfs, with
explicit ulimits (the machine's hard limits are lower than podman's defaults).
"""

from __future__ import annotations

import json
import resource
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

PODMAN = ["podman", "--runtime", "runc", "--cgroup-manager", "cgroupfs"]
NETWORK = "fraudwatch-ansible-test"
# The test hosts' own network, inside the machine: nothing else is ever addressed.
SUBNET = "10.89.71.0/24"


@dataclass(frozen=True)
class SystemdHost:
    """One booted container: its inventory name, podman container name and address."""

    name: str
    container: str
    address: str


def _podman(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*PODMAN, *args], check=check, capture_output=True, text=True)


def ensure_network() -> None:
    """Create the test hosts' private network unless it exists."""
    if _podman("network", "exists", NETWORK, check=False).returncode != 0:
        made = _podman("network", "create", "--internal", "--subnet", SUBNET, NETWORK, check=False)
        # Another test process (pytest-xdist worker) may have created it at the same moment.
        if made.returncode != 0 and _podman("network", "exists", NETWORK, check=False).returncode:
            raise RuntimeError(f"podman network create {NETWORK} failed: {made.stderr}")


def _ulimits() -> list[str]:
    """podman's default ulimits exceed the machine's hard limits: ask for what it allows."""
    nofile = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    nofile = 65536 if nofile == resource.RLIM_INFINITY else min(nofile, 65536)
    return ["--ulimit", f"nofile={nofile}:{nofile}", "--ulimit", "nproc=8192:8192"]


def _start(container: str, address: str, *args: str) -> None:
    """(Re)create `container` detached on the hosts' network at `address`; `args` follow."""
    _podman("rm", "--force", "--time", "5", container, check=False)
    _podman(
        "run",
        "--detach",
        "--name",
        container,
        "--network",
        NETWORK,
        "--ip",
        address,
        *_ulimits(),
        *args,
    )


def boot(image: str, name: str, container: str, address: str) -> SystemdHost:
    """Start a container with systemd as PID 1 and wait until boot has finished."""
    _start(
        container,
        address,
        "--hostname",
        name,
        "--systemd=always",
        # nftables needs NET_ADMIN (in the container's own network namespace); SYS_ADMIN lets
        # systemd set up the sandboxing the units ask for (ProtectSystem=, PrivateTmp=, ...).
        "--cap-add",
        "NET_ADMIN",
        "--cap-add",
        "SYS_ADMIN",
        "--memory",
        "4g",
        image,
        "/sbin/init",
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        state = _podman("exec", container, "systemctl", "is-system-running", check=False)
        if state.stdout.strip() in {"running", "degraded"}:
            # Units for hardware a container does not have; their failure is not the roles'.
            _podman("exec", container, "systemctl", "reset-failed", check=False)
            return SystemdHost(name=name, container=container, address=address)
        time.sleep(0.5)
    logs = _podman("logs", container, check=False)
    raise RuntimeError(
        f"{container}: systemd did not finish booting in 120 s:\n{logs.stdout[-2000:]}"
    )


def serve_repository(image: str, container: str, address: str, repository: Path) -> str:
    """Serve the package repository over HTTP from its own host on the private network.

    The air-gapped hosts' internal package repository: a plain HTTP server (apt verifies the
    signature, not the transport). Returns the repository's URI.
    """
    _start(
        container,
        address,
        "--volume",
        f"{repository}:/srv/repository:ro",
        image,
        "python3",
        "-m",
        "http.server",
        "80",
        "--bind",
        address,
        "--directory",
        "/srv/repository",
    )
    uri = f"http://{address}/"
    probe = f"import urllib.request; urllib.request.urlopen('{uri}dists/', timeout=2)"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if _podman("exec", container, "python3", "-c", probe, check=False).returncode == 0:
            return uri
        time.sleep(0.5)
    logs = _podman("logs", container, check=False)
    raise RuntimeError(f"{container}: the repository did not answer in 60 s:\n{logs.stderr}")


def remove_container(container: str) -> None:
    """Delete a helper container (the package repository) of a site."""
    _podman("rm", "--force", "--time", "5", container, check=False)


def remove(*hosts: SystemdHost) -> None:
    """Stop and delete the containers (systemd gets SIGRTMIN+3 and shuts services down)."""
    for host in hosts:
        _podman("rm", "--force", "--time", "30", host.container, check=False)


def nofile_limit(host: SystemdHost) -> int:
    """The hard open-file limit inside the host (units must not ask for more)."""
    out = _podman("exec", host.container, "sh", "-c", "ulimit -Hn").stdout.strip()
    return int(out) if out.isdigit() else 65536


def container_state(container: str) -> dict[str, object]:
    """podman's inspect record of the container (for failure reports)."""
    out = _podman("inspect", container, check=False).stdout
    return json.loads(out)[0] if out.strip().startswith("[") else {}
