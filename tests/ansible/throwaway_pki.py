"""A CA and host certificates made for one test run (never committed): the TLS material the
roles take from an inventory's files/ folder, with the keys vault-encrypted as an operator keeps
them."""

from __future__ import annotations

import datetime
import ipaddress
import subprocess
from pathlib import Path
from typing import Any

from conftest import BIN_DIR
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


def _certificate(
    subject: str, key: Any, issuer: x509.Name | None, issuer_key: Any, address: str | None
) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer or name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=address is None, path_length=None), critical=True)
    )
    if address is not None:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(address))]),
            critical=False,
        )
    return builder.sign(issuer_key, hashes.SHA256())


def make_pki(out: Path, hosts: dict[str, str], label: str) -> Path:
    """ca.crt and, per host name, NAME.crt (its address as IP SAN) and NAME.key (PKCS#8)."""
    out.mkdir(parents=True, exist_ok=True)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = _certificate(f"fraudwatch test {label} CA", ca_key, None, ca_key, None)
    (out / "ca.crt").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    for name, address in hosts.items():
        key = ec.generate_private_key(ec.SECP256R1())
        cert = _certificate(name, key, ca.subject, ca_key, address)
        (out / f"{name}.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        key_file = out / f"{name}.key"
        key_file.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        key_file.chmod(0o600)
    return out


def vault_encrypt_keys(out: Path, hosts: dict[str, str], vault_password_file: Path) -> None:
    """Encrypt the keys with the site's vault password, as the roles' documentation asks."""
    subprocess.run(
        [
            str(BIN_DIR / "ansible-vault"),
            "encrypt",
            "--vault-password-file",
            str(vault_password_file),
            *(str(out / f"{name}.key") for name in hosts),
        ],
        check=True,
        capture_output=True,
    )
