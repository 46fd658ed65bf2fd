"""`fraudwatch audit export`: the audit log copied to the real Elasticsearch node for the
interventions dashboard — each entry once, chain fields intact, only new entries on a rerun."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from fraudwatch.elasticsearch.client import connect
from fraudwatch.intervention.audit import new_entry
from fraudwatch.intervention.audit_export import export_audit
from fraudwatch.intervention.stores import open_store
from fraudwatch.publish.cli import es_app
from typer.testing import CliRunner

DEFINITIONS = Path(__file__).resolve().parents[3] / "dashboards" / "elasticsearch"


@pytest.fixture(scope="module")
def es_url(elasticsearch_server: Any) -> str:
    applied = CliRunner().invoke(
        es_app, ["apply", "--es-url", elasticsearch_server.url, "--definitions", str(DEFINITIONS)]
    )
    assert applied.exit_code == 0, applied.output
    return elasticsearch_server.url


def lock(store, user: int, actor: str = "analyst-1") -> None:
    store.append_audit(
        new_entry(
            actor=actor,
            role="analyst",
            via="api",
            action="lock",
            subject_kind="account",
            subject_id=str(user),
            reason=f"card testing on {user}",
            result="applied",
            detail='{"score": 0.97}',
        )
    )


def indexed(es_url: str, alias: str) -> list[dict[str, Any]]:
    answer = httpx.post(
        f"{es_url}/{alias}/_search", json={"size": 100, "sort": [{"seq": "asc"}]}
    ).json()
    return [hit["_source"] | {"_id": hit["_id"]} for hit in answer["hits"]["hits"]]


def test_each_entry_is_exported_once_with_its_chain(es_url: str, tmp_path: Path) -> None:
    alias = f"fraudwatch-audit-test-{uuid.uuid4().hex[:8]}"
    store = open_store(f"sqlite:///{tmp_path / 'state.db'}")
    for user in (11, 12, 13):
        lock(store, user)
    with connect(es_url) as client:
        first = export_audit(store, client, alias)
        assert (first.exported, first.first_seq, first.last_seq) == (3, 1, 3)

        again = export_audit(store, client, alias)  # nothing new: nothing sent
        assert again.exported == 0

        lock(store, 14, actor="hook:grafana")
        later = export_audit(store, client, alias)
        assert (later.exported, later.first_seq, later.last_seq) == (1, 4, 4)

    docs = indexed(es_url, alias)
    entries = store.audit_entries()
    assert [d["_id"] for d in docs] == ["audit:1", "audit:2", "audit:3", "audit:4"]
    assert [d["hash"] for d in docs] == [e["hash"] for e in entries]
    assert [d["prev_hash"] for d in docs] == [e["prev_hash"] for e in entries]
    assert docs[0]["subject_id"] == "11" and docs[3]["actor"] == "hook:grafana"
    # Searchable by the fields the dashboard filters on.
    hits = httpx.post(
        f"{es_url}/{alias}/_count", json={"query": {"term": {"subject_id": "13"}}}
    ).json()
    assert hits["count"] == 1


def test_an_unreachable_cluster_is_one_line_and_exit_2(tmp_path: Path) -> None:
    """Against a cluster address nothing listens on: one line, exit 2, no traceback."""
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "fraudwatch.cli",
            "audit",
            "export",
            "--es-url",
            "http://127.0.0.1:9",
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "FRAUDWATCH_HOME": str(tmp_path)},
        timeout=120,
    )
    assert result.returncode == 2
    assert "did not answer" in result.stderr + result.stdout
    assert "Traceback" not in result.stderr
