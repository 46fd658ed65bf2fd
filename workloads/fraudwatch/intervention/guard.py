"""ASGI guard in front of every route: body size (413; the alert hooks have their own, larger
limit, since one notification may group up to hooks.max_alerts alerts), content type on the JSON API (415),
security headers on every response, HTTPS as a trusted proxy reports it (Secure cookies and
Strict-Transport-Security behind a TLS ingress)."""

from __future__ import annotations

import ipaddress
import json
import time
from collections.abc import Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from fraudwatch.intervention.context import error_body

HOOK_PREFIX = "/v1/hooks/"  # the alert hooks: limit hooks.max_body_bytes
HSTS = "max-age=31536000; includeSubDomains"
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
    ),
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
}


# --- ASGI guards: body size, content type, security headers ------------------------------
class RequestGuard:
    """Rejects oversized bodies (413) and non-JSON bodies on the JSON API (415) before any
    route runs, and adds the security headers to every response."""

    def __init__(
        self,
        app: ASGIApp,
        max_body_bytes: int,
        hook_max_body_bytes: int | None = None,
        observe: Callable[[str, str, int, float], None] | None = None,
        trusted_proxies: tuple[str, ...] = (),
        always_https: bool = False,
    ) -> None:
        self.app = app
        self.max = max_body_bytes
        self.hook_max = max_body_bytes if hook_max_body_bytes is None else hook_max_body_bytes
        self.observe = observe
        self.trusted = tuple(ipaddress.ip_network(p, strict=False) for p in trusted_proxies)
        self.always_https = always_https

    def _via_trusted_proxy(self, scope: Scope, headers: dict[str, str]) -> bool:
        """True when a trusted proxy (the TLS ingress) says the client spoke HTTPS."""
        proto = headers.get("x-forwarded-proto", "").split(",")[0].strip().lower()
        if proto != "https" or not self.trusted:
            return False
        client = (scope.get("client") or ("", 0))[0]
        try:
            address = ipaddress.ip_address(client)
        except ValueError:
            return False
        return any(address in network for network in self.trusted)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = [500]
        try:
            await self._guarded(scope, receive, send, status)
        finally:
            if self.observe is not None:
                route = getattr(scope.get("route"), "path", "unmatched")
                self.observe(scope["method"], route, status[0], time.perf_counter() - start)

    async def _guarded(self, scope: Scope, receive: Receive, send: Send, status: list[int]) -> None:
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        if scope.get("scheme") != "https" and self._via_trusted_proxy(scope, headers):
            scope = {**scope, "scheme": "https"}  # cookies get Secure, URLs say https
        https = self.always_https or scope.get("scheme") == "https"

        async def send_secured(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = int(message["status"])
                extra = [(k.lower().encode(), v.encode()) for k, v in SECURITY_HEADERS.items()]
                if https:
                    extra.append((b"strict-transport-security", HSTS.encode()))
                if scope["path"].startswith("/admin"):
                    extra.append((b"cache-control", b"no-store"))
                message["headers"] = list(message.get("headers", [])) + extra
            await send(message)

        async def reject(status: int, message: str) -> None:
            body = json.dumps(error_body(message)).encode()
            await send_secured(
                {
                    "type": "http.response.start",
                    "status": status,
                    "headers": [
                        (b"content-type", b"application/json"),
                        (b"content-length", str(len(body)).encode()),
                    ],
                }
            )
            await send_secured({"type": "http.response.body", "body": body})

        hook = scope["path"].startswith(HOOK_PREFIX)
        limit = self.hook_max if hook else self.max
        setting = "hooks.max_body_bytes" if hook else "server.max_body_bytes"
        too_large = f"request body larger than {limit} bytes ({setting}): send less"
        length = headers.get("content-length", "")
        if length and (not length.isdigit() or int(length) > limit):
            await reject(413, too_large)
            return
        method = scope["method"]
        if method in ("POST", "PUT", "PATCH") and scope["path"].startswith("/v1/"):
            ctype = headers.get("content-type", "").split(";")[0].strip().lower()
            has_body = bool(length and int(length) > 0) or "transfer-encoding" in headers
            if has_body and ctype != "application/json":
                await reject(
                    415,
                    f"content type {ctype or '(none)'!r} is not accepted: "
                    "send the body as application/json",
                )
                return
        if method in ("POST", "PUT", "PATCH", "DELETE"):
            # Read the whole (bounded) body here, so an oversized chunked upload is refused
            # before any route sees it, then hand the route a receive that replays it.
            chunks: list[bytes] = []
            size = 0
            while True:
                message = await receive()
                if message["type"] != "http.request":
                    return  # client went away
                chunk = message.get("body", b"")
                size += len(chunk)
                if size > limit:
                    await reject(413, too_large)
                    return
                chunks.append(chunk)
                if not message.get("more_body", False):
                    break
            body = b"".join(chunks)
            replayed = False

            async def replay() -> Message:
                nonlocal replayed
                if not replayed:
                    replayed = True
                    return {"type": "http.request", "body": body, "more_body": False}
                return await receive()

            await self.app(scope, replay, send_secured)
            return
        await self.app(scope, receive, send_secured)
