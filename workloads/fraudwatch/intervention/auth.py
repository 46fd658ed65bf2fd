"""Who may do what: API tokens (stored hashed), optional OIDC/JWT, and the permission matrix."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from dataclasses import dataclass
from typing import Any

from fraudwatch.errors import UserError
from fraudwatch.intervention.audit import now_iso
from fraudwatch.intervention.config import OidcSettings
from fraudwatch.intervention.stores import StateStore

#: `decisions` is the payment system's role: it may ask for inline decisions and nothing else.
ROLES = ("viewer", "analyst", "admin", "automation", "decisions")

# permission -> roles that hold it. docs/intervention.md renders this as a table.
PERMISSIONS: dict[str, frozenset[str]] = {
    "results:read": frozenset({"viewer", "analyst", "admin"}),
    "history:read": frozenset({"viewer", "analyst", "admin"}),
    "audit:read": frozenset({"analyst", "admin"}),
    "interventions:write": frozenset({"analyst", "admin"}),
    "approvals:write": frozenset({"analyst", "admin"}),
    "policy:read": frozenset({"analyst", "admin"}),
    "policy:write": frozenset({"admin"}),
    "tokens:manage": frozenset({"admin"}),
    "audit:verify": frozenset({"admin"}),
    "hooks:post": frozenset({"automation", "admin"}),
    "metrics:read": frozenset({"viewer", "analyst", "admin", "automation"}),
    "decisions:post": frozenset({"decisions", "admin"}),
}

TOKEN_PREFIX = "fw_"


@dataclass(frozen=True)
class Principal:
    """An authenticated caller, as the audit log names it."""

    actor: str
    role: str
    #: When the credential stops being valid (seconds since the epoch), if it says so: an
    #: OIDC token's `exp`. An admin page session never outlives it.
    expires_at: float | None = None

    def may(self, permission: str) -> bool:
        return self.role in PERMISSIONS[permission]


def hash_token(token: str) -> str:
    # Tokens are 256 random bits, so a fast hash is enough (no dictionary to attack).
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(store: StateStore, role: str, name: str = "") -> tuple[str, dict[str, Any]]:
    """Make a new API token; only its hash is stored. Returns (token, record)."""
    if role not in ROLES:
        raise UserError(f"unknown role {role!r}: use one of {', '.join(ROLES)}")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    digest = hash_token(token)
    record = {
        "token_id": digest[:12],
        "token_hash": digest,
        "role": role,
        "name": name or role,
        "created_at": now_iso(),
    }
    store.put_token(record)
    return token, record


def principal_from_token(store: StateStore, token: str) -> Principal | None:
    record = store.get_token(hash_token(token))
    if record is None:
        return None
    return Principal(actor=f"token:{record['token_id']}", role=record["role"])


class OidcVerifier:
    """Validates JWT bearer tokens from the configured issuer against its JWKS."""

    def __init__(self, settings: OidcSettings) -> None:
        import jwt

        self.settings = settings
        self._jwt = jwt
        self._keyset: Any = None
        self._jwks: Any = None
        if settings.jwks_url.startswith("file://"):
            # A JWKS file copied from the IdP, for hosts that cannot reach its endpoint.
            from urllib.parse import unquote, urlparse

            path = unquote(urlparse(settings.jwks_url).path)
            try:
                with open(path) as handle:
                    self._keyset = jwt.PyJWKSet.from_json(handle.read())
            except (OSError, jwt.PyJWTError) as err:
                raise UserError(
                    f"config key oidc.jwks_url = {settings.jwks_url!r}: cannot read a JWKS "
                    f"there ({err}); point it at the issuer's JWKS URL or a readable file"
                ) from None
        else:
            self._jwks = jwt.PyJWKClient(settings.jwks_url, cache_keys=True)

    def _signing_key(self, token: str) -> Any:
        if self._jwks is not None:
            return self._jwks.get_signing_key_from_jwt(token).key
        kid = self._jwt.get_unverified_header(token).get("kid")
        for key in self._keyset.keys:
            if key.key_id == kid:
                return key.key
        raise self._jwt.InvalidKeyError(f"no key with kid {kid!r} in the JWKS file")

    def principal(self, token: str) -> Principal | None:
        jwt = self._jwt
        try:
            claims = jwt.decode(
                token,
                self._signing_key(token),
                algorithms=["RS256", "ES256", "PS256", "EdDSA"],
                audience=self.settings.audience,
                issuer=self.settings.issuer,
                options={"require": ["exp", "iss", "aud", "sub"]},
            )
        except (jwt.PyJWTError, ValueError):
            return None
        role = claims.get(self.settings.role_claim)
        if isinstance(role, list):
            # Several roles granted: take the strongest one we know.
            known = [
                r for r in ("admin", "analyst", "automation", "decisions", "viewer") if r in role
            ]
            role = known[0] if known else None
        if role not in ROLES:
            return None
        return Principal(
            actor=f"oidc:{claims['sub']}", role=str(role), expires_at=float(claims["exp"])
        )


#: The headers a signed hook carries beside `X-Fraudwatch-Signature`.
TIMESTAMP_HEADER = "X-Fraudwatch-Timestamp"
NONCE_HEADER = "X-Fraudwatch-Nonce"
_NONCE = re.compile(r"[A-Za-z0-9_-]{16,128}")


def signed_message(timestamp: str, nonce: str, body: bytes) -> bytes:
    """What the HMAC covers: `<timestamp>.<nonce>.<raw body>`."""
    return f"{timestamp}.{nonce}.".encode() + body


def verify_signature(secret: str, timestamp: str, nonce: str, body: bytes, header: str) -> bool:
    """Check an `X-Fraudwatch-Signature: sha256=<hex>` header over timestamp, nonce and the
    raw body (the timestamp window and nonce reuse are checked by the caller)."""
    if not secret or not header.startswith("sha256="):
        return False
    if not timestamp.isascii() or not timestamp.isdigit() or not _NONCE.fullmatch(nonce):
        return False
    message = signed_message(timestamp, nonce, body)
    expected = hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, header.removeprefix("sha256="))


def sign(secret: str, body: bytes, timestamp: int, nonce: str) -> str:
    """The signature header value a sender computes."""
    message = signed_message(str(timestamp), nonce, body)
    return "sha256=" + hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def signed_headers(secret: str, body: bytes, timestamp: int | None = None) -> dict[str, str]:
    """Every header a signed hook needs: a fresh nonce, now as the timestamp (used by tests
    and as the reference for senders)."""
    stamp = int(time.time()) if timestamp is None else timestamp
    nonce = secrets.token_urlsafe(24)
    return {
        TIMESTAMP_HEADER: str(stamp),
        NONCE_HEADER: nonce,
        "X-Fraudwatch-Signature": sign(secret, body, stamp, nonce),
    }
