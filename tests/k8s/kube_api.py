"""A small client for the Kubernetes REST API (stdlib only): discovery, server-side apply
(real or dry-run, strict field validation), get, delete. Errors keep the server's message."""

from __future__ import annotations

import json
import ssl
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any

FIELD_MANAGER = "fraudwatch-tests"


class ApiError(RuntimeError):
    """The API server answered with an error status."""

    def __init__(self, status: int, body: dict[str, Any] | str, what: str) -> None:
        self.status = status
        self.body = body
        message = body.get("message", body) if isinstance(body, dict) else body
        super().__init__(f"{what}: HTTP {status}: {message}")

    @property
    def message(self) -> str:
        return str(self.body.get("message", "")) if isinstance(self.body, dict) else self.body


@dataclass(frozen=True)
class Resource:
    plural: str
    namespaced: bool


class KubeApi:
    def __init__(self, url: str, token: str, context: ssl.SSLContext) -> None:
        self.url = url.rstrip("/")
        self.token = token
        self.context = context
        self._resources: dict[tuple[str, str], Resource] = {}

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        content_type: str = "application/json",
        query: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        url = self.url + path + ("?" + urllib.parse.urlencode(query) if query else "")
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(url, data=data, method=method)
        request.add_header("Authorization", f"Bearer {self.token}")
        request.add_header("Accept", "application/json")
        if data is not None:
            request.add_header("Content-Type", content_type)
        try:
            with urllib.request.urlopen(request, timeout=60, context=self.context) as response:
                text = response.read().decode()
        except urllib.error.HTTPError as error:
            raw = error.read().decode(errors="replace")
            try:
                parsed: dict[str, Any] | str = json.loads(raw)
            except ValueError:
                parsed = raw
            raise ApiError(error.code, parsed, f"{method} {path}") from None
        return json.loads(text) if text else {}

    # --- discovery ---------------------------------------------------------

    def resource(self, api_version: str, kind: str) -> Resource:
        key = (api_version, kind)
        if key not in self._resources:
            path = f"/api/{api_version}" if "/" not in api_version else f"/apis/{api_version}"
            try:
                listing = self.request("GET", path)
            except ApiError as error:
                raise ApiError(
                    error.status, error.body, f"{kind} {api_version} is not served"
                ) from None
            for entry in listing.get("resources", []):
                if "/" not in entry["name"]:
                    self._resources[(api_version, entry["kind"])] = Resource(
                        entry["name"], entry["namespaced"]
                    )
            if key not in self._resources:
                raise ApiError(404, f"{kind} is not served under {api_version}", "discovery")
        return self._resources[key]

    def forget_discovery(self) -> None:
        self._resources.clear()

    def path(self, obj: dict[str, Any], *, with_name: bool = True) -> str:
        api_version, kind = obj["apiVersion"], obj["kind"]
        resource = self.resource(api_version, kind)
        base = f"/api/{api_version}" if "/" not in api_version else f"/apis/{api_version}"
        namespace = obj["metadata"].get("namespace")
        if resource.namespaced:
            if not namespace:
                raise ValueError(f"{kind}/{obj['metadata']['name']} needs a namespace")
            base += f"/namespaces/{namespace}"
        base += f"/{resource.plural}"
        return base + (f"/{obj['metadata']['name']}" if with_name else "")

    # --- objects -----------------------------------------------------------

    def apply(self, obj: dict[str, Any], *, dry_run: bool = False) -> dict[str, Any]:
        """Server-side apply with strict field validation (unknown or duplicate fields are
        errors, as `kubectl apply --server-side --validate=strict`)."""
        query = {"fieldManager": FIELD_MANAGER, "force": "true", "fieldValidation": "Strict"}
        if dry_run:
            query["dryRun"] = "All"
        return self.request(
            "PATCH",
            self.path(obj),
            obj,
            content_type="application/apply-patch+yaml",
            query=query,
        )

    def create(self, obj: dict[str, Any], *, dry_run: bool = False) -> dict[str, Any]:
        query = {"fieldValidation": "Strict", **({"dryRun": "All"} if dry_run else {})}
        return self.request("POST", self.path(obj, with_name=False), obj, query=query)

    def get(self, api_version: str, kind: str, name: str, namespace: str | None = None) -> dict:
        obj = {"apiVersion": api_version, "kind": kind, "metadata": {"name": name}}
        if namespace:
            obj["metadata"]["namespace"] = namespace
        return self.request("GET", self.path(obj))

    def exists(self, api_version: str, kind: str, name: str, namespace: str | None = None) -> bool:
        try:
            self.get(api_version, kind, name, namespace)
        except ApiError as error:
            if error.status == 404:
                return False
            raise
        return True

    def list(self, api_version: str, kind: str, namespace: str | None = None) -> list[dict]:
        obj = {"apiVersion": api_version, "kind": kind, "metadata": {"name": "-"}}
        if namespace:
            obj["metadata"]["namespace"] = namespace
        return self.request("GET", self.path(obj, with_name=False)).get("items", [])

    def delete(self, obj: dict[str, Any]) -> None:
        try:
            self.request("DELETE", self.path(obj))
        except ApiError as error:
            if error.status != 404:
                raise

    def ensure_namespace(self, name: str) -> None:
        self.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})

    def wait_for(self, condition, *, what: str, timeout: float = 120.0) -> None:
        """Poll `condition()` (bounded) until it is true; fail naming `what`."""
        deadline = time.monotonic() + timeout
        while True:
            if condition():
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"{what}: not reached within {timeout:.0f} s")
            time.sleep(0.5)
