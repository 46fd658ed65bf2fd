"""Drift between the committed Grafana dashboards/alert rules and a live Grafana.

Committed: dashboards/grafana/*.json and the rule groups in dashboards/grafana/provisioning/.
Live: Grafana's HTTP API (`/api/search`, `/api/dashboards/uid/...`,
`/api/v1/provisioning/alert-rules`) with a service-account token, or an export of it (a
directory with `dashboards/<uid>.json` and `alert-rules.json`, as those endpoints return them).
Volatile fields that Grafana owns (ids, versions, timestamps, provenance) are ignored.
"""

from __future__ import annotations

import difflib
import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from fraudwatch.errors import UserError

DASHBOARD_VOLATILE = {"__generated__", "id", "version", "iteration", "created", "updated"}
RULE_KEYS = (
    "uid",
    "title",
    "condition",
    "data",
    "noDataState",
    "execErrState",
    "for",
    "annotations",
    "labels",
    "isPaused",
)
FRAUDWATCH_TAG = "fraudwatch"


@dataclass(frozen=True)
class Change:
    kind: str  # dashboard | alert-rule
    uid: str
    status: str  # changed | missing-live | only-live
    detail: str = ""

    def line(self) -> str:
        what = {
            "changed": "differs from the committed one",
            "missing-live": "is committed but not in Grafana",
            "only-live": "is in Grafana but not committed (built in the UI?)",
        }[self.status]
        return f"{self.kind} {self.uid} {what}"


def normalise_dashboard(model: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in model.items() if k not in DASHBOARD_VOLATILE}


def normalise_rule(rule: dict[str, Any]) -> dict[str, Any]:
    out = {k: rule[k] for k in RULE_KEYS if k in rule}
    out.setdefault("isPaused", False)
    out["for"] = _duration(str(out.get("for", "0s")))
    return out


def _duration(text: str) -> str:
    """Grafana answers `5m` as `5m` and `0s` as `0s`, but accepts `300s`: compare in seconds."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    total = 0
    number = ""
    for char in text:
        if char.isdigit():
            number += char
        elif char in units and number:
            total += int(number) * units[char]
            number = ""
    return f"{total}s"


def committed_dashboards(grafana_dir: Path) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for path in sorted(grafana_dir.glob("*.json")):
        model = json.loads(path.read_text(encoding="utf-8"))
        found[model["uid"]] = normalise_dashboard(model)
    if not found:
        raise UserError(
            f"no dashboard JSON in {grafana_dir}; run `make render` or pass --grafana-dir"
        )
    return found


def committed_rules(grafana_dir: Path) -> dict[str, dict[str, Any]]:
    rules: dict[str, dict[str, Any]] = {}
    for path in sorted((grafana_dir / "provisioning").rglob("*.yaml")):
        document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        for group in document.get("groups", []):
            for rule in group.get("rules", []):
                rules[rule["uid"]] = normalise_rule(rule)
    return rules


def diff_objects(
    kind: str, committed: dict[str, dict[str, Any]], live: dict[str, dict[str, Any]]
) -> list[Change]:
    changes = []
    for uid in sorted(set(committed) | set(live)):
        if uid not in live:
            changes.append(Change(kind, uid, "missing-live"))
        elif uid not in committed:
            changes.append(Change(kind, uid, "only-live"))
        elif committed[uid] != live[uid]:
            before = json.dumps(committed[uid], indent=2, sort_keys=True).splitlines()
            after = json.dumps(live[uid], indent=2, sort_keys=True).splitlines()
            detail = "\n".join(
                difflib.unified_diff(
                    before, after, f"committed/{uid}", f"live/{uid}", lineterm="", n=1
                )
            )
            changes.append(Change(kind, uid, "changed", detail))
    return changes


def load_export(export_dir: Path) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
    """Dashboards and rules from an export directory (see the module docstring)."""
    if not export_dir.is_dir():
        raise UserError(f"--export {export_dir} is not a directory")
    dashboards = {}
    for path in sorted((export_dir / "dashboards").glob("*.json")):
        body = json.loads(path.read_text(encoding="utf-8"))
        model = body.get("dashboard", body)  # /api/dashboards/uid answers {"dashboard": ...}
        dashboards[model["uid"]] = normalise_dashboard(model)
    rules_file = export_dir / "alert-rules.json"
    rules = {}
    if rules_file.is_file():
        for rule in json.loads(rules_file.read_text(encoding="utf-8")):
            rules[rule["uid"]] = normalise_rule(rule)
    return dashboards, rules


class GrafanaApi:
    """The few Grafana HTTP API calls drift needs, with a service-account token."""

    def __init__(self, url: str, token: str, timeout: float = 30.0) -> None:
        if not url.startswith(("http://", "https://")):
            raise UserError(f"--url {url!r} must start with https:// (or http:// on loopback)")
        if not token:
            raise UserError(
                "no Grafana token: pass --token or set GRAFANA_TOKEN (a service account token)"
            )
        self.url = url.rstrip("/")
        self.token = token
        self.timeout = timeout

    def request(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            f"{self.url}{path}",
            data=data,
            method=method,
            headers={
                "Authorization": f"Bearer {self.token}",
                "Content-Type": "application/json",
                "Accept": "application/json",
                "X-Disable-Provenance": "true",
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return json.loads(response.read() or b"null")
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                return None
            if exc.code in (401, 403):
                raise UserError(
                    f"Grafana refused the token ({exc.code}) for {path}; check --token"
                ) from None
            raise UserError(f"Grafana answered {exc.code} to {method} {path}") from None
        except urllib.error.URLError as exc:
            raise UserError(
                f"Grafana at {self.url} did not answer ({exc.reason}); check --url"
            ) from None

    def dashboards(self) -> dict[str, dict[str, Any]]:
        found = {}
        for hit in (
            self.request("GET", f"/api/search?type=dash-db&tag={FRAUDWATCH_TAG}&limit=5000") or []
        ):
            body = self.request("GET", f"/api/dashboards/uid/{hit['uid']}")
            if body:
                found[hit["uid"]] = normalise_dashboard(body["dashboard"])
        return found

    def rules(self) -> dict[str, dict[str, Any]]:
        rules = self.request("GET", "/api/v1/provisioning/alert-rules") or []
        return {
            r["uid"]: normalise_rule(r)
            for r in rules
            if r.get("folderUID") == FRAUDWATCH_TAG or r["uid"].startswith("fraudwatch-")
        }


def drift(
    grafana_dir: Path,
    live_dashboards: dict[str, dict[str, Any]],
    live_rules: dict[str, dict[str, Any]],
) -> list[Change]:
    return diff_objects(
        "dashboard", committed_dashboards(grafana_dir), live_dashboards
    ) + diff_objects("alert-rule", committed_rules(grafana_dir), live_rules)


def apply(api: GrafanaApi, grafana_dir: Path, folder_uid: str = FRAUDWATCH_TAG) -> list[str]:
    """Push every committed dashboard and alert rule (create or overwrite); return what was pushed."""
    pushed = []
    if api.request("GET", f"/api/folders/{folder_uid}") is None:
        api.request("POST", "/api/folders", {"uid": folder_uid, "title": "fraudwatch"})
    for uid, model in committed_dashboards(grafana_dir).items():
        api.request(
            "POST",
            "/api/dashboards/db",
            {
                "dashboard": {**model, "id": None},
                "folderUid": folder_uid,
                "overwrite": True,
                "message": "fraudwatch dashboards apply",
            },
        )
        pushed.append(f"dashboard {uid}")
    for path in sorted((grafana_dir / "provisioning").rglob("*.yaml")):
        document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        for group in document.get("groups", []):
            for rule in group.get("rules", []):
                body = {**rule, "folderUID": folder_uid, "ruleGroup": group["name"], "orgID": 1}
                exists = api.request("GET", f"/api/v1/provisioning/alert-rules/{rule['uid']}")
                if exists is None:
                    api.request("POST", "/api/v1/provisioning/alert-rules", body)
                else:
                    api.request("PUT", f"/api/v1/provisioning/alert-rules/{rule['uid']}", body)
                pushed.append(f"alert-rule {rule['uid']}")
    return pushed
