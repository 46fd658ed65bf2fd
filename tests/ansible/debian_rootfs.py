"""Build the Debian 12 root filesystem the Ansible tests boot as systemd hosts, and import it.

Run directly (``python tests/ansible/debian_rootfs.py``) to build ahead of the tests; the
pytest fixtures call :func:`ensure_host_image` too. The rootfs is built once with debootstrap,
cached as a tarball under the repository's git-ignored ``.cache/ansible/`` (keyed by the
package list below) and imported with ``tar -C rootfs -c . | podman import -`` — no image
registry is involved.

The Debian mirror is read from this machine's own apt sources (or ``FRAUDWATCH_DEBIAN_MIRROR``)
so that nothing here names a registry host.
"""

from __future__ import annotations

import hashlib
import inspect
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import package_repository

REPO_ROOT = Path(__file__).resolve().parents[2]
CACHE_DIR = REPO_ROOT / ".cache" / "ansible"
SUITE = "bookworm"

# What a freshly installed, air-gapped Debian 12 server carries before any role runs.
HOST_PACKAGES = [
    "systemd",
    "systemd-sysv",
    "dbus",
    "python3",
    "python3-apt",
    "iproute2",
    "procps",
    "ca-certificates",
    "curl",
    "sudo",  # Ansible becomes root with it
]
# What the roles install with apt. They come from the site's internal package repository
# (package_repository.py serves them to the hosts, signed): the .deb files of these packages
# and of every dependency the host does not have yet.
REPOSITORY_PACKAGES = [
    "nftables",
    "chrony",
    "logrotate",
    "python3-venv",
    "openjdk-17-jre-headless",
    "prometheus",
    "prometheus-node-exporter",
    "ceph-mon",
    "ceph-osd",
    "ceph-common",
    "radosgw",
]
IMAGE_NAME = "localhost/fraudwatch-systemd-host"


def _image_key() -> str:
    # What ends up in the image: the suite, the packages and the post-install adjustments.
    recipe = "\n".join(
        [
            SUITE,
            *sorted(HOST_PACKAGES),
            "--",
            *sorted(REPOSITORY_PACKAGES),
            inspect.getsource(_prepare_for_systemd),
            inspect.getsource(_download_repository_packages),
        ]
    )
    return hashlib.sha256(recipe.encode()).hexdigest()[:12]


def image_ref() -> str:
    """The podman image reference of the current host image."""
    return f"{IMAGE_NAME}:{_image_key()}"


def debian_mirror() -> str:
    """The Debian mirror URI this machine's apt uses (override: FRAUDWATCH_DEBIAN_MIRROR)."""
    if os.environ.get("FRAUDWATCH_DEBIAN_MIRROR"):
        return os.environ["FRAUDWATCH_DEBIAN_MIRROR"]
    sources = Path("/etc/apt/sources.list.d/debian.sources")
    if sources.exists():
        for stanza in sources.read_text().split("\n\n"):
            if re.search(rf"^Suites:.*\b{SUITE}\b", stanza, re.M) and "security" not in stanza:
                match = re.search(r"^URIs:\s*(\S+)", stanza, re.M)
                if match:
                    return match.group(1)
    legacy = Path("/etc/apt/sources.list")
    if legacy.exists():
        for line in legacy.read_text().splitlines():
            parts = line.split()
            if len(parts) >= 3 and parts[0] == "deb" and parts[2] == SUITE:
                return parts[1]
    raise SystemExit(
        "no Debian mirror found in /etc/apt sources: set FRAUDWATCH_DEBIAN_MIRROR to the URI "
        f"of a Debian mirror carrying {SUITE}"
    )


def _run(cmd: list[str], **kwargs: object) -> None:
    subprocess.run(cmd, check=True, **kwargs)  # type: ignore[call-overload]


def _prepare_for_systemd(rootfs: Path) -> None:
    """Trim units that have no business in a container and drop the build-time apt sources."""
    (rootfs / "etc/hostname").write_text("fraudwatch-host\n")
    (rootfs / "etc/machine-id").write_text("")
    masked = [
        "systemd-udevd.service",
        "systemd-udevd-control.socket",
        "systemd-udevd-kernel.socket",
        "getty@tty1.service",
        "console-getty.service",
        "systemd-firstboot.service",
        "systemd-resolved.service",
        "nvmf-autoconnect.service",
        "apt-daily.timer",
        "apt-daily-upgrade.timer",
    ]
    for unit in masked:
        link = rootfs / "etc/systemd/system" / unit
        link.unlink(missing_ok=True)
        link.symlink_to("/dev/null")
    # An air-gapped host reaches no public mirror: its only package source is the internal
    # repository the base role configures (base_apt_mirror_sources).
    (rootfs / "etc/apt/sources.list").unlink(missing_ok=True)
    for lists in (rootfs / "var/lib/apt/lists").glob("*_dists_*"):
        lists.unlink()
    (rootfs / "etc/apt/apt.conf.d/99fraudwatch-no-recommends").write_text(
        'APT::Install-Recommends "false";\n'
    )


def _download_repository_packages(rootfs: Path, pool: Path) -> None:
    """Fetch the .deb files of REPOSITORY_PACKAGES (and their missing dependencies) to `pool`.

    apt resolves them inside the freshly bootstrapped rootfs, so exactly what such a host
    lacks is fetched; nothing is installed.
    """
    archives = rootfs / "var/cache/apt/archives"
    _run(["chroot", str(rootfs), "apt-get", "update", "-qq"])
    _run(
        [
            "chroot",
            str(rootfs),
            "apt-get",
            "install",
            "--download-only",
            "--no-install-recommends",
            "-y",
            "-qq",
            *REPOSITORY_PACKAGES,
        ],
        stdout=subprocess.DEVNULL,
    )
    pool.mkdir(parents=True)
    for deb in archives.glob("*.deb"):
        shutil.move(deb, pool / deb.name)
    _run(["chroot", str(rootfs), "apt-get", "clean"])


def repository_dir() -> Path:
    """The internal package repository built with the current host image (see build)."""
    return CACHE_DIR / f"debian-{SUITE}-repository-{_image_key()}"


def build_tarball() -> Path:
    """Build (or reuse) the cached rootfs tarball and the package repository that goes with it."""
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    tarball = CACHE_DIR / f"debian-{SUITE}-rootfs-{_image_key()}.tar"
    repository = repository_dir()
    if tarball.exists() and repository.exists():
        return tarball
    if shutil.which("debootstrap") is None:
        raise SystemExit("debootstrap is not installed: run tests/ansible/install-host-tools.sh")
    with tempfile.TemporaryDirectory(dir=CACHE_DIR) as work:
        rootfs = Path(work) / "rootfs"
        _run(
            [
                "debootstrap",
                "--variant=minbase",
                f"--include={','.join(HOST_PACKAGES)}",
                SUITE,
                str(rootfs),
                debian_mirror(),
            ]
        )
        _download_repository_packages(rootfs, Path(work) / "pool")
        package_repository.publish(Path(work) / "pool", Path(work) / "repository", SUITE)
        _prepare_for_systemd(rootfs)
        partial = tarball.with_suffix(".partial")
        _run(["tar", "-C", str(rootfs), "--numeric-owner", "-cf", str(partial), "."])
        shutil.rmtree(repository, ignore_errors=True)
        (Path(work) / "repository").rename(repository)
        partial.rename(tarball)
    return tarball


def ensure_host_image() -> str:
    """Return the podman image of the systemd host, importing the cached rootfs if needed."""
    ref = image_ref()
    probe = subprocess.run(["podman", "image", "exists", ref], check=False)
    if probe.returncode == 0 and repository_dir().exists():
        return ref
    tarball = build_tarball()
    _run(
        [
            "podman",
            "import",
            "--change",
            "CMD=/sbin/init",
            "--change",
            "STOPSIGNAL=SIGRTMIN+3",
            str(tarball),
            ref,
        ],
        stdout=subprocess.DEVNULL,
    )
    return ref


if __name__ == "__main__":
    print(ensure_host_image(), repository_dir())
    sys.exit(0)
