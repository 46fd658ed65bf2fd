"""Behind the chart's TLS ingress the session cookie keeps `Secure` and responses carry HSTS:
X-Forwarded-Proto is believed from `server.trusted_proxies` only, and `server.always_https`
makes both unconditional."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from fraudwatch.intervention.api import create_app
from fraudwatch.intervention.auth import create_token
from fraudwatch.intervention.config import load_settings
from fraudwatch.intervention.results import ScoredResults
from fraudwatch.intervention.stores.sqlite import SqliteStore


def sign_in(tmp_path: Path, scored_dir: Path, env: dict[str, str], peer: str, proto: str):
    settings = load_settings(tmp_path / "absent.toml", env).with_scored(scored_dir)
    store = SqliteStore(tmp_path / "state.sqlite3")
    client = TestClient(
        create_app(settings, store, ScoredResults(scored_dir)),
        client=(peer, 40000),
        headers={"X-Forwarded-Proto": proto} if proto else {},
    )
    token, _ = create_token(store, "analyst")
    form = client.get("/admin/login")
    csrf = re.search(r'name="csrf" value="([^"]+)"', form.text).group(1)  # type: ignore[union-attr]
    # a browser sends the (possibly Secure) sign-in cookie back over the ingress's HTTPS
    login = re.search(r"fw_login_csrf=([^;]+)", form.headers["set-cookie"]).group(1)  # type: ignore[union-attr]
    client.cookies.clear()
    answer = client.post(
        "/admin/login",
        data={"token": token, "csrf": csrf},
        headers={"cookie": f"fw_login_csrf={login}"},
        follow_redirects=False,
    )
    assert answer.status_code == 303, answer.text
    cookie = next(
        v for k, v in answer.headers.multi_items() if k == "set-cookie" and "fw_session" in v
    )
    return form, cookie


@pytest.mark.parametrize(
    ("env", "peer", "proto", "secure"),
    [
        ({"FRAUDWATCH_TRUSTED_PROXIES": "10.0.0.0/8"}, "10.1.2.3", "https", True),
        ({"FRAUDWATCH_TRUSTED_PROXIES": "10.0.0.0/8"}, "192.0.2.9", "https", False),
        ({}, "10.1.2.3", "https", False),  # default: only the host itself is trusted
        ({"FRAUDWATCH_ALWAYS_HTTPS": "true"}, "192.0.2.9", "", True),
        ({}, "127.0.0.1", "", False),
    ],
    ids=["trusted ingress", "spoofed header", "untrusted by default", "always https", "plain"],
)
def test_session_cookie_secure_and_hsts_follow_the_trusted_proxy(
    tmp_path: Path,
    scored_dir: Path,
    env: dict[str, str],
    peer: str,
    proto: str,
    secure: bool,
) -> None:
    form, cookie = sign_in(tmp_path, scored_dir, env, peer, proto)
    assert ("secure" in cookie.lower().split("; ")) is secure, cookie
    hsts = form.headers.get("strict-transport-security")
    if secure:
        assert hsts is not None and "max-age=31536000" in hsts
    else:
        assert hsts is None


def test_a_bad_trusted_proxies_value_names_the_key(tmp_path: Path) -> None:
    from fraudwatch.errors import UserError

    with pytest.raises(UserError) as err:
        load_settings(tmp_path / "absent.toml", {"FRAUDWATCH_TRUSTED_PROXIES": "ingress"})
    assert "server.trusted_proxies" in str(err.value)
