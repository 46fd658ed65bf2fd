"""Ship the audit log to Elasticsearch (alias `fraudwatch-audit`) for the interventions
dashboard: `fraudwatch audit export`, run on a timer (systemd, CronJob or Airflow).

The store stays the authoritative, verifiable log (`fraudwatch audit verify`); the index is a
copy for searching and charts. Each entry keeps its place in the hash chain (seq, prev_hash,
hash) and is indexed with the id `audit:<seq>`, so an export that is retried or run twice
overwrites instead of duplicating. An export starts after the highest seq already in the
index, so each run sends only the new entries.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fraudwatch.elasticsearch.bulk import bulk_index
from fraudwatch.elasticsearch.client import (
    ElasticsearchHttp,
    ElasticsearchRefused,
    ElasticsearchUnreachable,
)
from fraudwatch.elasticsearch.definitions import bootstrap_write_index, has_index_template
from fraudwatch.errors import UserError
from fraudwatch.intervention.audit import ENTRY_FIELDS
from fraudwatch.intervention.stores import StateStore

AUDIT_ALIAS = "fraudwatch-audit"
BATCH = 1000


@dataclass(frozen=True)
class AuditExport:
    exported: int
    first_seq: int | None
    last_seq: int | None


def exported_until(client: ElasticsearchHttp, alias: str = AUDIT_ALIAS) -> int:
    """The highest seq already in the index (0 when it holds none)."""
    try:
        answer = client.request(
            "POST", f"/{alias}/_search", {"size": 0, "aggs": {"last": {"max": {"field": "seq"}}}}
        )
    except ElasticsearchRefused as exc:
        if exc.status == 404:
            return 0
        raise
    value = answer["aggregations"]["last"]["value"]
    return int(value) if value is not None else 0


def document(entry: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    source = {key: entry.get(key) for key in (*ENTRY_FIELDS, "hash")}
    # `detail` is free text in the store; the index keeps it unparsed under an object.
    source["detail"] = {"text": source.get("detail") or ""}
    source["record_type"] = "audit"
    return f"audit:{entry['seq']}", source


def export_audit(
    store: StateStore, client: ElasticsearchHttp, alias: str = AUDIT_ALIAS
) -> AuditExport:
    """Index the entries after the highest seq already exported to `alias`; idempotent. The
    alias belongs to one store: point a new, empty store at a new alias."""
    try:
        if not has_index_template(client, AUDIT_ALIAS):
            raise UserError(
                f"the cluster has no index template {AUDIT_ALIAS}: run `fraudwatch es apply` "
                "first so audit entries get their mapping"
            )
        bootstrap_write_index(client, alias)
        after = exported_until(client, alias)
        first = last = None
        exported = 0
        while entries := store.audit_entries(after_seq=after, limit=BATCH):
            bulk_index(client, alias, (document(e) for e in entries))
            first = entries[0]["seq"] if first is None else first
            last = after = entries[-1]["seq"]
            exported += len(entries)
        client.request("POST", f"/{alias}/_refresh")
    except ElasticsearchUnreachable as exc:
        raise UserError(
            f"Elasticsearch at {client.url} did not answer ({exc}); check --es-url / "
            "FRAUDWATCH_ELASTICSEARCH_URL and that the cluster is up"
        ) from None
    return AuditExport(exported, first, last)
