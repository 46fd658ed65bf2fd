"""Elasticsearch as code: the definitions dashboards/elasticsearch/ holds, and the cluster's
rollover aliases.

`apply_definitions` PUTs ILM policies (`ilm/`), component and index templates
(`component-templates/`, `index-templates/`) and, when asked, Watcher watches (`watches/`,
paid licence). Each index template's write alias is bootstrapped (`<alias>-000001`,
`is_write_index`) so rollover works from the first document. The index templates' mappings
are the single source of the documents' field names (`index_template_mappings`).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fraudwatch.elasticsearch.client import (
    ElasticsearchHttp,
    ElasticsearchRefused,
    ElasticsearchUnreachable,
    unreachable,
)
from fraudwatch.errors import UserError

#: API path per definition kind, in the order they must be applied (templates name policies).
KIND_PATHS = {
    "ilm": "_ilm/policy",
    "component-template": "_component_template",
    "index-template": "_index_template",
    "watch": "_watcher/watch",
}
_FOLDER_KIND = {
    "ilm": "ilm",
    "component-templates": "component-template",
    "index-templates": "index-template",
    "watches": "watch",
}
_PLACEHOLDER = re.compile(r"\$\{([A-Z][A-Z0-9_]*)\}")


@dataclass(frozen=True)
class Definition:
    kind: str  # ilm | component-template | index-template | watch
    name: str
    body: dict[str, Any]
    path: Path

    @property
    def api_path(self) -> str:
        return f"{KIND_PATHS[self.kind]}/{self.name}"


def load_definitions(folder: Path) -> list[Definition]:
    """Every definition under `folder`, in apply order; a clear error for a malformed file."""
    if not folder.is_dir():
        raise UserError(
            f"{folder} is not a directory of Elasticsearch definitions; "
            "pass --definitions dashboards/elasticsearch from the repository root"
        )
    found: list[Definition] = []
    for path in sorted(folder.rglob("*.json")):
        kind = _FOLDER_KIND.get(path.parent.name)
        if kind is None:
            continue
        try:
            body = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise UserError(f"{path}: not valid JSON ({exc}); fix the file") from None
        if not isinstance(body, dict):
            raise UserError(f"{path}: a definition must be a JSON object")
        found.append(Definition(kind, path.stem, body, path))
    order = list(KIND_PATHS)
    return sorted(found, key=lambda d: (order.index(d.kind), d.name))


def index_template_mappings(folder: Path) -> dict[str, dict[str, Any]]:
    """alias → the `mappings` of its index template (the single source of field names)."""
    return {
        write_alias(d): d.body["template"]["mappings"]
        for d in load_definitions(folder)
        if d.kind == "index-template"
    }


def write_alias(template: Definition) -> str:
    """The rollover alias an index template serves: its pattern without the trailing `-*`."""
    settings = template.body.get("template", {}).get("settings", {}).get("index", {})
    alias = settings.get("lifecycle", {}).get("rollover_alias")
    if alias:
        return str(alias)
    (pattern,) = template.body["index_patterns"]
    return str(pattern).removesuffix("-*")


def mapped_fields(mappings: dict[str, Any], prefix: str = "") -> set[str]:
    """Dotted names of every field in a mapping, including multi-fields (`reasons.keyword`)."""
    names: set[str] = set()
    for name, spec in mappings.get("properties", {}).items():
        full = f"{prefix}{name}"
        names.add(full)
        names |= mapped_fields(spec, f"{full}.")
        for sub in spec.get("fields", {}):
            names.add(f"{full}.{sub}")
    return names


def substitute_placeholders(value: Any, environ: Mapping[str, str] | None = None) -> Any:
    """Replace `${NAME}` with the environment's value; a clear error when one is unset."""
    env = os.environ if environ is None else environ
    if isinstance(value, str):

        def lookup(match: re.Match[str]) -> str:
            name = match.group(1)
            if not env.get(name):
                raise UserError(f"the watch needs {name}: set it in the environment and re-run")
            return env[name]

        return _PLACEHOLDER.sub(lookup, value)
    if isinstance(value, dict):
        return {k: substitute_placeholders(v, env) for k, v in value.items()}
    if isinstance(value, list):
        return [substitute_placeholders(v, env) for v in value]
    return value


def _without_lifecycle(body: dict[str, Any]) -> dict[str, Any]:
    body = json.loads(json.dumps(body))
    index = body.get("template", {}).get("settings", {}).get("index", {})
    index.pop("lifecycle", None)
    return body


# --- the cluster ------------------------------------------------------------------------
def ilm_available(client: ElasticsearchHttp) -> bool:
    """False on clusters without ILM (OSS builds, OpenSearch)."""
    try:
        client.request("GET", "/_ilm/status")
    except ElasticsearchRefused as exc:
        if exc.status in (400, 404, 405):
            return False
        raise
    return True


def has_index_template(client: ElasticsearchHttp, name: str) -> bool:
    try:
        client.request("GET", f"/_index_template/{name}")
    except ElasticsearchRefused as exc:
        if exc.status == 404:
            return False
        raise
    return True


@dataclass
class ApplyResult:
    applied: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # "<what>: <why>"


def apply_definitions(
    client: ElasticsearchHttp,
    folder: Path,
    *,
    watches: bool = False,
    environ: dict[str, str] | None = None,
) -> ApplyResult:
    """PUT ILM policies, templates (and watches if asked); bootstrap each write alias."""
    definitions = load_definitions(folder)
    result = ApplyResult()
    try:
        has_ilm = ilm_available(client)
        for definition in definitions:
            body = definition.body
            if definition.kind == "ilm" and not has_ilm:
                result.skipped.append(f"{definition.api_path}: this cluster has no ILM")
                continue
            if definition.kind == "watch":
                if not watches:
                    result.skipped.append(f"{definition.api_path}: pass --watches to install")
                    continue
                body = substitute_placeholders(body, environ)
            if definition.kind == "index-template" and not has_ilm:
                body = _without_lifecycle(body)
            try:
                client.request("PUT", f"/{definition.api_path}", body)
            except ElasticsearchRefused as exc:
                if definition.kind == "watch" and exc.status in (400, 403, 404):
                    result.skipped.append(
                        f"{definition.api_path}: Watcher refused ({exc.status}); "
                        "it needs a Gold or higher licence"
                    )
                    continue
                raise UserError(
                    f"Elasticsearch refused {definition.path.name} ({exc.status}: "
                    f"{exc.reason or exc.error_type}); fix the definition and re-run "
                    "`fraudwatch es apply`"
                ) from None
            result.applied.append(definition.api_path)
        for definition in definitions:
            if definition.kind == "index-template":
                alias = write_alias(definition)
                if bootstrap_write_index(client, alias):
                    result.applied.append(f"{alias}-000001 (write index of {alias})")
    except ElasticsearchUnreachable as exc:
        raise unreachable(client.url, exc) from None
    return result


def bootstrap_write_index(client: ElasticsearchHttp, alias: str) -> bool:
    """Create `<alias>-000001` as the alias's write index unless an alias or index of that
    name exists already (an existing plain index is written to as it is)."""
    if client.exists(f"/{alias}"):
        return False
    try:
        client.request("PUT", f"/{alias}-000001", {"aliases": {alias: {"is_write_index": True}}})
    except ElasticsearchRefused as exc:
        if exc.error_type == "resource_already_exists_exception":
            return False
        raise
    return True


def alias_indices(client: ElasticsearchHttp, alias: str) -> tuple[set[str], set[str]]:
    """(every index of the alias, its write index — or its only index, which takes writes
    implicitly); both empty when there is no such alias."""
    try:
        answer = client.request("GET", f"/_alias/{alias}")
    except ElasticsearchRefused as exc:
        if exc.status == 404:
            return set(), set()
        raise
    members = {name: body["aliases"][alias] for name, body in answer.items()}
    explicit = {n for n, a in members.items() if a.get("is_write_index")}
    return set(members), explicit or (set(members) if len(members) == 1 else set())
