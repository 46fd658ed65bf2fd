"""The HTTP client fraudwatch talks to Elasticsearch with, its credentials and its errors.

`ElasticsearchHttp` is plain REST over httpx: elasticsearch-py 7.14+ refuses nodes without
Elastic's product header (our OSS 7.10.2 test node) and 7.13 does not import beside NumPy 2,
and the handful of calls fraudwatch makes need no client library. `connect` builds one from
the environment (API key, or user and password, from variables or the secrets directory).
"""

from __future__ import annotations

import json
import math
import os
import ssl
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from fraudwatch.errors import UserError
from fraudwatch.locations.secrets_dir import secret


class ElasticsearchUnreachable(Exception):
    """The request never got an HTTP answer (refused, reset, timed out, TLS failure)."""


class ElasticsearchRefused(Exception):
    """The cluster answered with an HTTP error status; `error_type`/`reason` from its body."""

    def __init__(self, status: int, error_type: str, reason: str, method: str, path: str):
        super().__init__(f"{method} {path}: {status} {error_type}: {reason}")
        self.status = status
        self.error_type = error_type
        self.reason = reason


def unreachable(url: str, exc: Exception) -> UserError:
    """The one-line error for a cluster that did not answer at all."""
    return UserError(
        f"Elasticsearch at {url} did not answer ({exc}); "
        "check --es-url / FRAUDWATCH_ELASTICSEARCH_URL and that the cluster is up"
    )


def document_value(value: Any) -> Any:
    """A value as a document field: NaN as null (JSON has none), a datetime as ISO 8601 UTC."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
    return value


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return document_value(value)
    raise TypeError(f"cannot send {type(value).__name__} to Elasticsearch")


def _dumps(value: Any) -> str:
    return json.dumps(value, default=_json_default, allow_nan=False, separators=(",", ":"))


class ElasticsearchHttp:
    """The REST calls fraudwatch makes, as plain HTTP with httpx: no Elasticsearch client
    package, so no product-header check (our OSS 7.10 nodes do not send it) and no NumPy
    import. `request` is the one place that talks to the cluster; `bulk` sends NDJSON."""

    def __init__(
        self,
        url: str,
        *,
        basic_auth: tuple[str, str] | None = None,
        api_key: str | None = None,
        ca_cert: Path | None = None,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        if not url.startswith(("http://", "https://")):
            raise UserError(f"--es-url {url!r} must start with http:// or https://")
        self.url = url.rstrip("/")
        headers = {"Accept": "application/json"}
        if api_key:
            headers["Authorization"] = f"ApiKey {api_key}"
        verify: ssl.SSLContext | bool = True
        if ca_cert is not None:
            if not ca_cert.is_file():
                raise UserError(f"--ca-cert {ca_cert} does not exist; give the cluster's CA file")
            verify = ssl.create_default_context(cafile=str(ca_cert))
        self._http = httpx.Client(
            base_url=self.url,
            auth=basic_auth,
            headers=headers,
            verify=verify,
            timeout=timeout,
            transport=transport,
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> ElasticsearchHttp:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        params: dict[str, str] | None = None,
        ndjson: str | None = None,
    ) -> Any:
        """Send one request; the decoded JSON answer (None for HEAD / an empty body).
        Raises ElasticsearchRefused for a 4xx/5xx answer, ElasticsearchUnreachable when
        there is no answer at all."""
        content: str | None = None
        headers: dict[str, str] = {}
        if ndjson is not None:
            content, headers["Content-Type"] = ndjson, "application/x-ndjson"
        elif body is not None:
            content, headers["Content-Type"] = _dumps(body), "application/json"
        try:
            response = self._http.request(
                method, path, content=content, params=params, headers=headers
            )
        except httpx.TransportError as exc:
            raise ElasticsearchUnreachable(f"{type(exc).__name__}: {exc}") from exc
        if response.status_code >= 400:
            error_type, reason = _error_of(response)
            raise ElasticsearchRefused(response.status_code, error_type, reason, method, path)
        if method == "HEAD" or not response.content:
            return None
        return response.json()

    def exists(self, path: str) -> bool:
        """HEAD `path`: True on 200, False on 404."""
        try:
            self.request("HEAD", path)
        except ElasticsearchRefused as exc:
            if exc.status == 404:
                return False
            raise
        return True

    def bulk(self, actions: Iterable[dict[str, Any]]) -> dict[str, Any]:
        """POST /_bulk with action/source lines; the answer with its per-item `items`."""
        ndjson = "".join(_dumps(line) + "\n" for line in actions)
        answer: dict[str, Any] = self.request("POST", "/_bulk", ndjson=ndjson)
        return answer


def _error_of(response: httpx.Response) -> tuple[str, str]:
    try:
        body = response.json()
    except ValueError:
        return "", response.text[:300]
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        return str(error.get("type", "")), str(error.get("reason", ""))[:300]
    return "", str(error if error is not None else body)[:300]


def connect(
    url: str,
    ca_cert: Path | None = None,
    timeout: float = 30.0,
    transport: httpx.BaseTransport | None = None,
) -> ElasticsearchHttp:
    """A client for `url`. Credentials: FRAUDWATCH_ES_API_KEY (or the file
    `$FRAUDWATCH_SECRETS_DIR/es-api-key`), else FRAUDWATCH_ES_USERNAME with the password from
    FRAUDWATCH_ES_PASSWORD or `$FRAUDWATCH_SECRETS_DIR/es-password`; none for an open node.
    The CA bundle: `ca_cert`, else FRAUDWATCH_ES_CA_FILE, else the system's."""
    if ca_cert is None and os.environ.get("FRAUDWATCH_ES_CA_FILE"):
        ca_cert = Path(os.environ["FRAUDWATCH_ES_CA_FILE"])
    api_key = secret("FRAUDWATCH_ES_API_KEY", "es-api-key") or None
    basic_auth = None
    username = os.environ.get("FRAUDWATCH_ES_USERNAME")
    if username and not api_key:
        password = secret("FRAUDWATCH_ES_PASSWORD", "es-password")
        if not password:
            raise UserError(
                "FRAUDWATCH_ES_USERNAME is set but no password: set FRAUDWATCH_ES_PASSWORD "
                "or put it in $FRAUDWATCH_SECRETS_DIR/es-password"
            )
        basic_auth = (username, password)
    return ElasticsearchHttp(
        url,
        basic_auth=basic_auth,
        api_key=api_key,
        ca_cert=ca_cert,
        timeout=timeout,
        transport=transport,
    )
