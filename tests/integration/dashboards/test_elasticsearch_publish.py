"""Templates applied to a real node; published documents get the mapping; aggregations = DuckDB."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest
from dashboards_fixtures import DASHBOARDS
from fraudwatch.elasticsearch.bulk import bulk_index
from fraudwatch.elasticsearch.client import ElasticsearchHttp, connect
from fraudwatch.elasticsearch.definitions import ilm_available
from fraudwatch.errors import UserError
from fraudwatch.publish.cli import es_app, publish
from typer.testing import CliRunner

DEFINITIONS = DASHBOARDS / "elasticsearch"


@pytest.fixture(scope="module")
def client(es_url: str) -> Iterator[ElasticsearchHttp]:
    with connect(es_url) as http:
        yield http


@pytest.fixture(scope="module")
def applied(es_url: str) -> str:
    result = CliRunner().invoke(
        es_app, ["apply", "--es-url", es_url, "--definitions", str(DEFINITIONS)]
    )
    assert result.exit_code == 0, result.output
    return result.output


def _publish_args(es_url: str, scored_dir: Path) -> list[str]:
    return [
        "--to",
        "elasticsearch",
        "--scored",
        str(scored_dir),
        "--es-url",
        es_url,
        "--definitions",
        str(DEFINITIONS),
    ]


def _publish_app():
    import typer

    app = typer.Typer()
    app.command()(publish)
    return app


@pytest.fixture(scope="module")
def published(applied: str, es_url: str, scored_dir: Path) -> str:
    app, args = _publish_app(), _publish_args(es_url, scored_dir)
    first = CliRunner().invoke(app, args)
    assert first.exit_code == 0, first.output
    replay = CliRunner().invoke(app, args)  # the same run again must not duplicate anything
    assert replay.exit_code == 0, replay.output
    return first.output


def test_templates_apply_and_write_aliases_exist(applied: str, client) -> None:
    for name in ("fraudwatch-transactions", "fraudwatch-users", "fraudwatch-audit"):
        assert f"applied _index_template/{name}" in applied
        assert client.exists(f"/_alias/{name}")
    assert "fraudwatch-transactions-000001 (write index" in applied
    if ilm_available(client):
        assert "applied _ilm/policy/fraudwatch-scored" in applied
    else:  # the OSS test node has no ILM: the policy is skipped, said so, not silently
        assert "skipped _ilm/policy/fraudwatch-scored: this cluster has no ILM" in applied
    assert "skipped _watcher/watch/high_anomaly_score: pass --watches" in applied


def test_apply_twice_is_harmless(applied: str, es_url: str) -> None:
    again = CliRunner().invoke(
        es_app, ["apply", "--es-url", es_url, "--definitions", str(DEFINITIONS)]
    )
    assert again.exit_code == 0, again.output
    assert "000001" not in again.output  # aliases exist: nothing bootstrapped twice


def test_documents_get_the_intended_mapping(published: str, client) -> None:
    mapping = client.request("GET", "/fraudwatch-transactions-000001/_mapping")
    props = mapping["fraudwatch-transactions-000001"]["mappings"]["properties"]
    assert props["ts"]["type"] == "date"
    assert props["ip"]["type"] == "ip"
    assert props["ensemble_score"]["type"] == "double"
    assert props["persona"]["type"] == "keyword"
    assert props["reasons"]["fields"]["keyword"]["type"] == "keyword"
    users = client.request("GET", "/fraudwatch-users-000001/_mapping")["fraudwatch-users-000001"][
        "mappings"
    ]
    assert users["properties"]["features"]["properties"]["tx_count"]["type"] == "double"


def test_replay_does_not_duplicate(published: str, client, scored_dir: Path) -> None:
    tx_rows = duckdb.sql(
        f"SELECT COUNT(*) FROM read_parquet('{scored_dir}/transactions/*.parquet')"
    ).fetchall()[0][0]
    user_rows = duckdb.sql(
        f"SELECT COUNT(*) FROM read_parquet('{scored_dir}/users.parquet')"
    ).fetchall()[0][0]
    assert client.request("GET", "/fraudwatch-transactions/_count")["count"] == tx_rows
    assert client.request("GET", "/fraudwatch-users/_count")["count"] == user_rows
    assert f"indexed {tx_rows:,} transactions" in published


def test_top_users_aggregation_equals_duckdb(published: str, client, scored_dir: Path) -> None:
    body = {
        "size": 0,
        "query": {"term": {"record_type": "transaction"}},
        "aggs": {
            "users": {
                "terms": {
                    "field": "user_id",
                    "size": 10,
                    "order": [{"top": "desc"}, {"_key": "asc"}],
                },
                "aggs": {"top": {"max": {"field": "ensemble_score"}}},
            }
        },
    }
    buckets = client.request("GET", "/fraudwatch-transactions/_search", body)["aggregations"][
        "users"
    ]["buckets"]
    from_es = [(b["key"], round(b["top"]["value"], 9)) for b in buckets]
    duck = duckdb.sql(
        "SELECT user_id, ROUND(MAX(ensemble_score), 9) AS top "
        f"FROM read_parquet('{scored_dir}/transactions/*.parquet') GROUP BY user_id ORDER BY top DESC, user_id LIMIT 10"
    ).fetchall()
    assert from_es == [(u, s) for u, s in duck]


def test_flagged_by_hour_equals_duckdb(published: str, client, scored_dir: Path) -> None:
    body = {
        "size": 0,
        "query": {
            "bool": {
                "filter": [{"term": {"record_type": "transaction"}}, {"term": {"flagged": True}}]
            }
        },
        "aggs": {"hours": {"terms": {"field": "hour", "size": 24}}},
    }
    buckets = client.request("GET", "/fraudwatch-transactions/_search", body)["aggregations"][
        "hours"
    ]["buckets"]
    from_es = sorted((b["key"], b["doc_count"]) for b in buckets)
    duck = duckdb.sql(
        f"SELECT hour, COUNT(*) FROM read_parquet('{scored_dir}/transactions/*.parquet') WHERE flagged GROUP BY hour ORDER BY hour"
    ).fetchall()
    assert from_es == [(int(h), int(n)) for h, n in duck]
    assert from_es, "no flagged transactions: the comparison would prove nothing"


def test_publish_to_an_unreachable_cluster_is_one_line_error(scored_dir: Path) -> None:
    import typer

    app = typer.Typer()
    app.command()(publish)
    result = CliRunner().invoke(
        app,
        [
            "--to",
            "elasticsearch",
            "--scored",
            str(scored_dir),
            "--es-url",
            "http://127.0.0.1:9",
            "--definitions",
            str(DEFINITIONS),
        ],
    )
    assert result.exit_code == 2
    assert "did not answer" in result.output


def test_document_ids_are_id_and_model_version(published: str, client, scored_dir: Path) -> None:
    from fraudwatch.contract.scored_directory import open_scored

    run = open_scored(str(scored_dir))
    tx_id = duckdb.sql(
        f"SELECT MIN(tx_id) FROM read_parquet('{scored_dir}/transactions/*.parquet')"
    ).fetchall()[0][0]
    doc = client.request("GET", f"/fraudwatch-transactions-000001/_doc/{tx_id}:{run.model_version}")
    assert doc["found"]
    assert doc["_source"]["tx_id"] == tx_id
    assert doc["_source"]["model_version"] == run.model_version


def test_a_document_the_mapping_refuses_stops_with_one_line(applied: str, client) -> None:
    """A content error from the real node is not retried: it names the document and the fix."""
    bad = [("bad-doc:test", {"record_type": "transaction", "ensemble_score": "not a number"})]
    with pytest.raises(UserError) as refused:
        bulk_index(client, "fraudwatch-transactions", bad, sleep=lambda _: None)
    assert "refused document bad-doc:test (400 mapper_parsing_exception" in str(refused.value)
    assert "fraudwatch es apply" in str(refused.value)


def _rows(scored_dir: Path) -> tuple[int, int]:
    tx = duckdb.sql(f"SELECT COUNT(*) FROM read_parquet('{scored_dir}/transactions/*.parquet')")
    users = duckdb.sql(f"SELECT COUNT(*) FROM read_parquet('{scored_dir}/users.parquet')")
    return tx.fetchall()[0][0], users.fetchall()[0][0]


def test_a_replay_after_a_rollover_does_not_duplicate(
    published: str, client, es_url: str, scored_dir: Path
) -> None:
    """Ids are unique per index: once the alias rolled over (ILM, or the retention job), a
    replay writes into the new write index and must remove the copies in the older ones."""
    for alias in ("fraudwatch-transactions", "fraudwatch-users"):
        rolled = client.request("POST", f"/{alias}/_rollover")
        assert rolled["rolled_over"], rolled
    replay = CliRunner().invoke(_publish_app(), _publish_args(es_url, scored_dir))
    assert replay.exit_code == 0, replay.output
    tx_rows, user_rows = _rows(scored_dir)
    assert client.request("GET", "/fraudwatch-transactions/_count")["count"] == tx_rows
    assert client.request("GET", "/fraudwatch-users/_count")["count"] == user_rows
    # Everything now sits in the new write indices; the old ones hold no copy.
    assert client.request("GET", "/fraudwatch-transactions-000001/_count")["count"] == 0
