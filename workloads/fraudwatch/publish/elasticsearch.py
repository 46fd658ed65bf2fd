"""Publish a scored run to Elasticsearch: `fraudwatch publish --to elasticsearch`.

`publish_scored` bulk-indexes a scored directory into the `fraudwatch-transactions` and
`fraudwatch-users` aliases (contract/scored_output.py). Document ids are `<tx_id|user_id>:<model_version>`, so a replay of
the same run overwrites instead of duplicating, and a new model version adds its own documents.
An id is unique per index, not per alias: once the alias has rolled over (ILM, or the
retention job on a cluster without ILM), a replay writes its documents into the new write
index, so the publisher deletes the copies an earlier publish left in the older indices.

The client, the definitions and the bulk writer are fraudwatch.elasticsearch's.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fraudwatch.contract.scored_directory import ScoredRun
from fraudwatch.contract.scored_output import TRANSACTIONS_INDEX, USER_COLUMNS, USERS_INDEX
from fraudwatch.elasticsearch.bulk import bulk_index
from fraudwatch.elasticsearch.client import (
    ElasticsearchHttp,
    ElasticsearchUnreachable,
    document_value,
    unreachable,
)
from fraudwatch.elasticsearch.definitions import (
    alias_indices,
    bootstrap_write_index,
    has_index_template,
    index_template_mappings,
)
from fraudwatch.errors import UserError

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
            source = {k: document_value(v) for k, v in row.items() if k in allowed}
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
    feature_columns = [c for c in table.schema.names if c not in USER_COLUMNS]

    def extra(row: dict[str, Any]) -> dict[str, Any]:
        features = {c: document_value(row[c]) for c in feature_columns if row.get(c) is not None}
        return {"features": features, "ts": run.created_at}

    return _documents(table.to_batches(max_chunksize=5000), "user", "user_id", run, allowed, extra)


@dataclass(frozen=True)
class PublishSummary:
    transactions: int
    users: int
    retries: int
    model_version: str


def publish_scored(client: ElasticsearchHttp, run: ScoredRun, definitions: Path) -> PublishSummary:
    """Index a scored run's transactions and users; idempotent for the same run."""
    mappings = index_template_mappings(definitions)
    for alias in (TRANSACTIONS_INDEX, USERS_INDEX):
        if alias not in mappings:
            raise UserError(f"{definitions} has no index template for {alias}; restore it")
    try:
        for alias in (TRANSACTIONS_INDEX, USERS_INDEX):
            if not client.exists(f"/_template/{alias}") and not has_index_template(client, alias):
                raise UserError(
                    f"the cluster has no index template {alias}: "
                    "run `fraudwatch es apply` first so documents get the fraudwatch mapping"
                )
            bootstrap_write_index(client, alias)
        tx = bulk_index(
            client,
            TRANSACTIONS_INDEX,
            replacing_older_copies(
                client,
                TRANSACTIONS_INDEX,
                run.model_version,
                transaction_documents(run, mappings[TRANSACTIONS_INDEX]),
            ),
        )
        users = bulk_index(
            client,
            USERS_INDEX,
            replacing_older_copies(
                client, USERS_INDEX, run.model_version, user_documents(run, mappings[USERS_INDEX])
            ),
        )
        client.request("POST", f"/{TRANSACTIONS_INDEX},{USERS_INDEX}/_refresh")
    except ElasticsearchUnreachable as exc:
        raise unreachable(client.url, exc) from None
    return PublishSummary(tx.indexed, users.indexed, tx.retries + users.retries, run.model_version)
