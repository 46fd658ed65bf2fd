"""OIDC/JWT bearer tokens from a configured issuer, checked against its JWKS (read from a
local file here: the same PyJWKClient code path fetches it over HTTPS in production)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi.testclient import TestClient

ISSUER = "https://idp.example.test/realms/bank"
AUDIENCE = "fraudwatch"


@pytest.fixture
def signing_key(tmp_path: Path) -> tuple[rsa.RSAPrivateKey, Path]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps({"keys": [{**jwk, "kid": "k1", "use": "sig", "alg": "RS256"}]}))
    return key, jwks


def token(key: rsa.RSAPrivateKey, **claims: object) -> str:
    body = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "alice",
        "exp": int(time.time()) + 300,
        "fraudwatch_role": "analyst",
        **claims,
    }
    return jwt.encode(body, key, algorithm="RS256", headers={"kid": "k1"})


def test_an_oidc_token_acts_with_its_role_and_is_named_in_the_audit(
    make_client: Callable[..., TestClient], signing_key: tuple[rsa.RSAPrivateKey, Path]
) -> None:
    key, jwks = signing_key
    client = make_client(
        FRAUDWATCH_OIDC_ISSUER=ISSUER,
        FRAUDWATCH_OIDC_AUDIENCE=AUDIENCE,
        FRAUDWATCH_OIDC_JWKS_URL=jwks.as_uri(),
    )
    headers = {"Authorization": f"Bearer {token(key)}"}
    response = client.post("/v1/accounts/1/lock", json={"reason": "sso"}, headers=headers)
    assert response.status_code == 200, response.text
    entry = client.store.audit_entries()[-1]  # type: ignore[attr-defined]
    assert entry["actor"] == "oidc:alice" and entry["role"] == "analyst"
    viewer = {"Authorization": f"Bearer {token(key, fraudwatch_role='viewer')}"}
    assert (
        client.post("/v1/accounts/1/unlock", json={"reason": "x"}, headers=viewer).status_code
        == 403
    )


@pytest.mark.parametrize(
    "claims",
    [
        {"aud": "someone-else"},
        {"iss": "https://evil.test"},
        {"exp": int(time.time()) - 10},
        {"fraudwatch_role": "superuser"},
    ],
)
def test_wrong_audience_issuer_expiry_or_role_is_refused(
    make_client: Callable[..., TestClient],
    signing_key: tuple[rsa.RSAPrivateKey, Path],
    claims: dict[str, object],
) -> None:
    key, jwks = signing_key
    client = make_client(
        FRAUDWATCH_OIDC_ISSUER=ISSUER,
        FRAUDWATCH_OIDC_AUDIENCE=AUDIENCE,
        FRAUDWATCH_OIDC_JWKS_URL=jwks.as_uri(),
    )
    headers = {"Authorization": f"Bearer {token(key, **claims)}"}
    assert client.get("/v1/anomalies", headers=headers).status_code == 401


def test_a_token_signed_by_another_key_is_refused(
    make_client: Callable[..., TestClient], signing_key: tuple[rsa.RSAPrivateKey, Path]
) -> None:
    _, jwks = signing_key
    client = make_client(
        FRAUDWATCH_OIDC_ISSUER=ISSUER,
        FRAUDWATCH_OIDC_AUDIENCE=AUDIENCE,
        FRAUDWATCH_OIDC_JWKS_URL=jwks.as_uri(),
    )
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    headers = {"Authorization": f"Bearer {token(other)}"}
    assert client.get("/v1/anomalies", headers=headers).status_code == 401


def test_an_admin_session_ends_when_its_oidc_token_expires(
    make_client: Callable[..., TestClient], signing_key: tuple[rsa.RSAPrivateKey, Path]
) -> None:
    import re

    from fraudwatch.intervention.admin import SESSION_COOKIE, session_hash

    key, jwks = signing_key
    client = make_client(
        FRAUDWATCH_OIDC_ISSUER=ISSUER,
        FRAUDWATCH_OIDC_AUDIENCE=AUDIENCE,
        FRAUDWATCH_OIDC_JWKS_URL=jwks.as_uri(),
    )
    exp = int(time.time()) + 5
    form = client.get("/admin/login").text
    csrf = re.search(r'name="csrf" value="([^"]+)"', form).group(1)  # type: ignore[union-attr]
    signed_in = client.post(
        "/admin/login", data={"token": token(key, exp=exp), "csrf": csrf}, follow_redirects=False
    )
    assert signed_in.status_code == 303 and signed_in.headers["location"] == "/admin"
    sid = client.cookies.get(SESSION_COOKIE)
    assert sid
    record = client.store.get_session(session_hash(sid), exp - 1)  # type: ignore[attr-defined]
    assert record is not None and record["expires_at"] <= exp
    # at the token's expiry the session is gone, not 8 hours later
    assert client.store.get_session(session_hash(sid), exp) is None  # type: ignore[attr-defined]
    assert "max-age=" in signed_in.headers["set-cookie"].lower()
    max_age = int(re.search(r"max-age=(\d+)", signed_in.headers["set-cookie"], re.I).group(1))  # type: ignore[union-attr]
    assert max_age <= 5
