"""Elasticsearch as code and the scored-results publisher.

`apply_definitions` PUTs what dashboards/elasticsearch/ holds: ILM policies (`ilm/`), component
and index templates (`component-templates/`, `index-templates/`) and, when asked, Watcher
watches (`watches/`, paid licence). Each index template's write alias is bootstrapped
(`<alias>-000001`, `is_write_index`) so rollover works from the first document.

`publish_scored` bulk-indexes a scored directory into the `fraudwatch-transactions` and
`fraudwatch-users` aliases. Document ids are `<tx_id|user_id>:<model_version>`, so a replay of
the same run overwrites instead of duplicating, and a new model version adds its own documents.
An id is unique per index, not per alias: once the alias has rolled over (ILM, or the
retention job on a cluster without ILM), a replay writes its documents into the new write
index, so the publisher deletes the copies an earlier publish left in the older indices.

Both talk to the cluster through `ElasticsearchHttp`, plain REST over httpx: elasticsearch-py
7.14+ refuses nodes without Elastic's product header (our OSS 7.10.2 test node) and 7.13 does
not import beside NumPy 2, and the handful of calls made here need no client library.
"""

from __future__ import annotations

import json
import math
import os
import re
import ssl
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from fraudwatch.errors import UserError
from fraudwatch.models import MODEL_NAMES
from fraudwatch.publish.scored_input import ScoredRun

TRANSACTIONS_ALIAS = "fraudwatch-transactions"
USERS_ALIAS = "fraudwatch-users"
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
#: Bulk item statuses worth retrying: overloaded or briefly unavailable.
RETRYABLE_STATUSES = frozenset({429, 502, 503, 504})


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
class ElasticsearchUnreachable(Exception):
    """The request never got an HTTP answer (refused, reset, timed out, TLS failure)."""


class ElasticsearchRefused(Exception):
    """The cluster answered with an HTTP error status; `error_type`/`reason` from its body."""

    def __init__(self, status: int, error_type: str, reason: str, method: str, path: str):
        super().__init__(f"{method} {path}: {status} {error_type}: {reason}")
        self.status = status
        self.error_type = error_type
        self.reason = reason


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return _clean(value)
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


def _secret(env_name: str, file_name: str) -> str | None:
    """A secret from the environment, else from `$FRAUDWATCH_SECRETS_DIR/<file_name>`."""
    value = os.environ.get(env_name)
    secrets_dir = os.environ.get("FRAUDWATCH_SECRETS_DIR")
    if not value and secrets_dir and (Path(secrets_dir) / file_name).is_file():
        value = (Path(secrets_dir) / file_name).read_text(encoding="utf-8").strip()
    return value or None


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
    api_key = _secret("FRAUDWATCH_ES_API_KEY", "es-api-key")
    basic_auth = None
    username = os.environ.get("FRAUDWATCH_ES_USERNAME")
    if username and not api_key:
        password = _secret("FRAUDWATCH_ES_PASSWORD", "es-password")
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


def _unreachable(url: str, exc: Exception) -> UserError:
    return UserError(
        f"Elasticsearch at {url} did not answer ({exc}); "
        "check --es-url / FRAUDWATCH_ELASTICSEARCH_URL and that the cluster is up"
    )


def ilm_available(client: ElasticsearchHttp) -> bool:
    """False on clusters without ILM (OSS builds, OpenSearch)."""
    try:
        client.request("GET", "/_ilm/status")
    except ElasticsearchRefused as exc:
        if exc.status in (400, 404, 405):
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
        raise _unreachable(client.url, exc) from None
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


#: Ids per delete request when a replay removes the copies left in older indices.
SUPERSEDED_BATCH = 10_000


def replacing_older_copies(
    client: ElasticsearchHttp,
    alias: str,
    model_version: str,
    documents: Iterable[tuple[str, dict[str, Any]]],
) -> Iterator[tuple[str, dict[str, Any]]]:
    """The documents, unchanged; as they pass, the documents with the same ids are deleted
    from the alias's older (non-write) indices — only when those hold any document of this
    model version, so a first publish costs one count request."""
    members, writers = alias_indices(client, alias)
    older = ",".join(sorted(members - writers))
    if older:
        found = client.request(
            "POST", f"/{older}/_count", {"query": {"term": {"model_version": model_version}}}
        )
        if not found.get("count"):
            older = ""
    ids: list[str] = []

    def delete() -> None:
        client.request(
            "POST",
            f"/{older}/_delete_by_query?conflicts=proceed",
            {"query": {"ids": {"values": ids}}},
        )
        ids.clear()

    for doc_id, source in documents:
        yield doc_id, source
        if older:
            ids.append(doc_id)
            if len(ids) >= SUPERSEDED_BATCH:
                delete()
    if older and ids:
        delete()


# --- documents --------------------------------------------------------------------------
def _clean(value: Any) -> Any:
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
    return value


def _documents(
    batches: Iterable[Any],
    record_type: str,
    key: str,
    run: ScoredRun,
    allowed: set[str],
    extra: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
) -> Iterator[tuple[str, dict[str, Any]]]:
    for batch in batches:
        for row in batch.to_pylist():
            source = {k: _clean(v) for k, v in row.items() if k in allowed}
            if extra is not None:
                source.update(extra(row))
            source["record_type"] = record_type
            source["model_version"] = run.model_version
            source["scored_at"] = run.created_at
            yield f"{row[key]}:{run.model_version}", source


def transaction_documents(
    run: ScoredRun, mappings: dict[str, Any]
) -> Iterator[tuple[str, dict[str, Any]]]:
    """(id, source) per scored transaction; only the columns the index maps."""
    allowed = set(mappings["properties"])
    columns = [c for c in run.transactions().schema.names if c in allowed]
    batches = run.transactions().to_batches(columns=columns, batch_size=5000)
    return _documents(batches, "transaction", "tx_id", run, allowed)


def user_documents(
    run: ScoredRun, mappings: dict[str, Any]
) -> Iterator[tuple[str, dict[str, Any]]]:
    """(id, source) per scored user; the user features go under `features`, `ts` is the run's
    time (so Grafana's time filter applies to users too)."""
    allowed = set(mappings["properties"]) - {"features", "ts"}
    table = run.users()
    core = {"rank", "user_id", "persona", "flagged", "reasons", "top_features", "label"}
    core |= {"scenario", "ensemble_score", *(f"{name}_score" for name in MODEL_NAMES)}
    feature_columns = [c for c in table.schema.names if c not in core]

    def extra(row: dict[str, Any]) -> dict[str, Any]:
        features = {c: _clean(row[c]) for c in feature_columns if row.get(c) is not None}
        return {"features": features, "ts": run.created_at}

    return _documents(table.to_batches(max_chunksize=5000), "user", "user_id", run, allowed, extra)


# --- bulk indexing ----------------------------------------------------------------------
def _not_ready(client: ElasticsearchHttp) -> str | None:
    """Why the cluster cannot take writes yet (not yellow within 30 s), or None."""
    try:
        health = client.request(
            "GET", "/_cluster/health", params={"wait_for_status": "yellow", "timeout": "30s"}
        )
    except ElasticsearchRefused as exc:  # 408 when still not yellow, 503 while starting
        return f"answered {exc.status} to a health check ({exc.reason or exc.error_type})"
    if health.get("timed_out") or health.get("status") == "red":
        return f"is {health.get('status', 'unknown')}, not ready for writes"
    return None


class ElasticsearchUnavailable(UserError):
    """The cluster stayed unreachable or busy for longer than the retry budget. A UserError,
    so the CLI prints one line; the streaming job lets it fail the micro-batch, which Spark
    then re-runs from the same offsets."""


@dataclass(frozen=True)
class RetryBudget:
    """How long `bulk_index` keeps trying while the cluster is down or busy (connection
    errors, 429, 502-504): at most `retries` retries (None: no limit) and at most `seconds`
    since the chunk's first attempt (None: no limit), whichever ends first. The wait doubles
    from `initial_s` up to `max_s`. The batch publisher gives up after a few retries; the
    streaming job rides out an outage of minutes (docs/streaming.md)."""

    retries: int | None = 5
    seconds: float | None = None
    initial_s: float = 0.5
    max_s: float = 15.0

    def __post_init__(self) -> None:
        if self.retries is None and self.seconds is None:
            raise ValueError("a retry budget needs a limit: retries, seconds or both")


@dataclass
class BulkReport:
    indexed: int = 0
    retries: int = 0


def bulk_index(
    client: ElasticsearchHttp,
    alias: str,
    documents: Iterable[tuple[str, dict[str, Any]]],
    *,
    chunk_size: int = 2000,
    budget: RetryBudget = RetryBudget(),
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> BulkReport:
    """Index (id, source) pairs into `alias` with the bulk API. Items the cluster is too busy
    for (429/5xx), whole requests it answers so, and requests that fail in transit are retried
    with exponential back-off within `budget`, then ElasticsearchUnavailable; an item refused
    for its content (e.g. a mapping conflict) stops the run at once (UserError)."""
    report = BulkReport()
    chunk: list[tuple[str, dict[str, Any]]] = []

    def send(pending: list[tuple[str, dict[str, Any]]]) -> None:
        delay, started, attempt = budget.initial_s, clock(), 0
        while True:
            actions: list[dict[str, Any]] = []
            for doc_id, source in pending:
                actions.append({"index": {"_index": alias, "_id": doc_id}})
                actions.append(source)
            try:
                # After a failure, write only once the cluster has recovered its state: a
                # node that has just restarted can take a bulk request before it knows its
                # aliases, and then refuses the alias as an index name (400, not retryable).
                problem = _not_ready(client) if attempt else None
                if problem is None:
                    response = client.bulk(actions)
            except ElasticsearchUnreachable as exc:
                problem = f"did not answer ({exc})"
            except ElasticsearchRefused as exc:
                if exc.status not in RETRYABLE_STATUSES:
                    raise UserError(
                        f"bulk request to {alias} failed ({exc.status}: "
                        f"{exc.reason or exc.error_type})"
                    ) from None
                problem = f"answered {exc.status} ({exc.reason or exc.error_type})"
            if problem is None:
                retry: list[tuple[str, dict[str, Any]]] = []
                for (doc_id, source), item in zip(pending, response["items"], strict=True):
                    outcome = item["index"]
                    status = int(outcome.get("status", 500))
                    if status < 300:
                        report.indexed += 1
                    elif status in RETRYABLE_STATUSES:
                        retry.append((doc_id, source))
                    else:
                        error = outcome.get("error", {})
                        raise UserError(
                            f"{alias} refused document {doc_id} ({status} "
                            f"{error.get('type', '')}: {error.get('reason', '')}); "
                            "run `fraudwatch es apply` so the index has the fraudwatch mapping"
                        )
                if not retry:
                    return
                pending = retry
                problem = f"still refused {len(retry)} documents as busy"
            out_of_retries = budget.retries is not None and attempt >= budget.retries
            out_of_time = budget.seconds is not None and clock() + delay - started > budget.seconds
            if out_of_retries or out_of_time:
                raise ElasticsearchUnavailable(
                    f"Elasticsearch at {client.url} {problem} after {attempt} retries over "
                    f"{clock() - started:.0f} s; check --es-url / FRAUDWATCH_ELASTICSEARCH_URL "
                    "and that the cluster is up, then try again"
                )
            attempt += 1
            report.retries += 1
            sleep(delay)
            delay = min(delay * 2, budget.max_s)

    for item in documents:
        chunk.append(item)
        if len(chunk) >= chunk_size:
            send(chunk)
            chunk = []
    if chunk:
        send(chunk)
    return report


@dataclass(frozen=True)
class PublishSummary:
    transactions: int
    users: int
    retries: int
    model_version: str


def publish_scored(client: ElasticsearchHttp, run: ScoredRun, definitions: Path) -> PublishSummary:
    """Index a scored run's transactions and users; idempotent for the same run."""
    mappings = index_template_mappings(definitions)
    for alias in (TRANSACTIONS_ALIAS, USERS_ALIAS):
        if alias not in mappings:
            raise UserError(f"{definitions} has no index template for {alias}; restore it")
    try:
        for alias in (TRANSACTIONS_ALIAS, USERS_ALIAS):
            if not client.exists(f"/_template/{alias}") and not has_index_template(client, alias):
                raise UserError(
                    f"the cluster has no index template {alias}: "
                    "run `fraudwatch es apply` first so documents get the fraudwatch mapping"
                )
            bootstrap_write_index(client, alias)
        tx = bulk_index(
            client,
            TRANSACTIONS_ALIAS,
            replacing_older_copies(
                client,
                TRANSACTIONS_ALIAS,
                run.model_version,
                transaction_documents(run, mappings[TRANSACTIONS_ALIAS]),
            ),
        )
        users = bulk_index(
            client,
            USERS_ALIAS,
            replacing_older_copies(
                client, USERS_ALIAS, run.model_version, user_documents(run, mappings[USERS_ALIAS])
            ),
        )
        client.request("POST", f"/{TRANSACTIONS_ALIAS},{USERS_ALIAS}/_refresh")
    except ElasticsearchUnreachable as exc:
        raise _unreachable(client.url, exc) from None
    return PublishSummary(tx.indexed, users.indexed, tx.retries + users.retries, run.model_version)


def has_index_template(client: ElasticsearchHttp, name: str) -> bool:
    try:
        client.request("GET", f"/_index_template/{name}")
    except ElasticsearchRefused as exc:
        if exc.status == 404:
            return False
        raise
    return True
