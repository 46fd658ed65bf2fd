"""The internal Debian package repository the air-gapped test hosts install from.

An air-gapped site mirrors the Debian packages its hosts need into a repository of its own and
signs it with its own key; the base role points apt at it (`base_apt_mirror_sources`, with the
repository's public key). The tests do exactly that: debian_rootfs.py fetches the .deb files the
roles install, :func:`publish` lays them out as a Debian repository (``dists/<suite>/main``,
``pool/``) signed with a key made for this repository, and systemd_hosts.serve_repository runs an HTTP
server for it on the hosts' private network.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import subprocess
import tempfile
from email.utils import formatdate
from pathlib import Path

ARCHITECTURE = "amd64"
COMPONENT = "main"
PUBLIC_KEY = "repository-key.asc"


def _control_stanza(deb: Path, filename: str) -> str:
    control = subprocess.run(
        ["dpkg-deb", "--field", str(deb)], check=True, capture_output=True, text=True
    ).stdout.rstrip("\n")
    data = deb.read_bytes()
    return (
        f"{control}\nFilename: {filename}\nSize: {len(data)}\n"
        f"SHA256: {hashlib.sha256(data).hexdigest()}\n"
    )


def _release(suite: str, index_dir: Path) -> str:
    lines = [
        "Origin: fraudwatch-tests",
        "Label: fraudwatch-tests",
        f"Suite: {suite}",
        f"Codename: {suite}",
        f"Date: {formatdate(usegmt=True)}",
        f"Architectures: {ARCHITECTURE}",
        f"Components: {COMPONENT}",
        "SHA256:",
    ]
    suite_dir = index_dir.parent.parent
    for index in sorted(index_dir.iterdir()):
        data = index.read_bytes()
        name = index.relative_to(suite_dir).as_posix()
        lines.append(f" {hashlib.sha256(data).hexdigest()} {len(data)} {name}")
    return "\n".join(lines) + "\n"


def _sign(release: Path, out: Path) -> None:
    """Clear-sign Release as InRelease with a key made now; write its public half to `out`."""
    with tempfile.TemporaryDirectory() as gnupg_home:
        env = {**os.environ, "GNUPGHOME": gnupg_home}

        def gpg(*args: str) -> bytes:
            return subprocess.run(
                ["gpg", "--batch", "--quiet", "--pinentry-mode", "loopback", *args],
                check=True,
                capture_output=True,
                env=env,
            ).stdout

        uid = "fraudwatch test package repository"
        gpg("--passphrase", "", "--quick-gen-key", uid, "ed25519", "sign", "never")
        gpg(
            "--local-user",
            uid,
            "--clearsign",
            "--output",
            str(release.parent / "InRelease"),
            str(release),
        )
        (out / PUBLIC_KEY).write_bytes(gpg("--armor", "--export", uid))


def publish(pool: Path, repository: Path, suite: str) -> None:
    """Move the .deb files of `pool` into a signed repository at `repository` (made new)."""
    (repository / "pool").mkdir(parents=True)
    index_dir = repository / "dists" / suite / COMPONENT / f"binary-{ARCHITECTURE}"
    index_dir.mkdir(parents=True)
    stanzas = []
    for deb in sorted(pool.glob("*.deb")):
        published = Path(shutil.move(deb, repository / "pool" / deb.name))
        stanzas.append(_control_stanza(published, f"pool/{deb.name}"))
    packages = "\n".join(stanzas).encode()
    (index_dir / "Packages").write_bytes(packages)
    (index_dir / "Packages.gz").write_bytes(gzip.compress(packages, mtime=0))
    release = repository / "dists" / suite / "Release"
    release.write_text(_release(suite, index_dir))
    _sign(release, repository)


def public_key(repository: Path) -> str:
    """The armored public key apt verifies the repository with."""
    return (repository / PUBLIC_KEY).read_text()
