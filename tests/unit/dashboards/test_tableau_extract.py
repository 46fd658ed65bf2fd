"""The Tableau extract, reopened with the Hyper API, agrees with DuckDB on the same data."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest
from fraudwatch.contract.scored_directory import open_scored
from fraudwatch.errors import UserError
from fraudwatch.publish import tableau
from tableauhyperapi import Connection, HyperProcess, Telemetry


@pytest.fixture(scope="module")
def extracts(scored_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    return tableau.write_extracts(open_scored(scored_dir), tmp_path_factory.mktemp("tableau"))


def _hyper(path: Path, sql: str) -> list[tuple]:
    with (
        HyperProcess(
            Telemetry.DO_NOT_SEND_USAGE_DATA_TO_TABLEAU, parameters={"log_config": ""}
        ) as hyper,
        Connection(hyper.endpoint, str(path)) as conn,
    ):
        return [tuple(row) for row in conn.execute_list_query(sql)]


def test_transaction_extract_matches_duckdb(extracts: dict, scored_dir: Path) -> None:
    path = extracts["transactions"].hyper
    sql = (
        'SELECT COUNT(*), SUM(CASE WHEN "flagged" THEN 1 ELSE 0 END), ROUND(SUM("amount"), 4), '
        'ROUND(AVG("ensemble_score"), 9), COUNT(DISTINCT "user_id") FROM "Extract"."Extract"'
    )
    (hyper_row,) = _hyper(path, sql)
    duck = duckdb.sql(
        "SELECT COUNT(*), SUM(CASE WHEN flagged THEN 1 ELSE 0 END), ROUND(SUM(amount), 4), "
        "ROUND(AVG(ensemble_score), 9), COUNT(DISTINCT user_id) "
        f"FROM read_parquet('{scored_dir}/transactions/*.parquet')"
    ).fetchall()[0]
    assert [float(v) for v in hyper_row] == pytest.approx([float(v) for v in duck])
    assert extracts["transactions"].rows == duck[0] == 3000


def test_flagged_by_persona_matches_duckdb(extracts: dict, scored_dir: Path) -> None:
    hyper_rows = _hyper(
        extracts["users"].hyper,
        'SELECT "persona", COUNT(*), SUM(CASE WHEN "flagged" THEN 1 ELSE 0 END) '
        'FROM "Extract"."Extract" GROUP BY "persona" ORDER BY "persona"',
    )
    duck = duckdb.sql(
        "SELECT persona, COUNT(*), SUM(CASE WHEN flagged THEN 1 ELSE 0 END) "
        f"FROM read_parquet('{scored_dir}/users.parquet') GROUP BY persona ORDER BY persona"
    ).fetchall()
    assert [(p, int(n), int(f)) for p, n, f in hyper_rows] == [
        (p, int(n), int(f)) for p, n, f in duck
    ]


def test_reasons_scenario_and_top_features_survive(extracts: dict, scored_dir: Path) -> None:
    (top,) = _hyper(
        extracts["users"].hyper,
        'SELECT "user_id", "reasons", "top_features" FROM "Extract"."Extract" WHERE "rank" = 1',
    )
    duck = duckdb.sql(
        f"SELECT user_id, reasons, array_to_string(top_features, '; ') FROM read_parquet('{scored_dir}/users.parquet') WHERE rank = 1"
    ).fetchall()[0]
    assert tuple(top) == tuple(duck)


def test_tds_names_the_extract_and_every_column(extracts: dict) -> None:
    text = extracts["transactions"].tds.read_text()
    assert 'dbname="fraudwatch-transactions.hyper"' in text
    for column in tableau.TRANSACTION_COLUMNS:
        assert f"name='[{column.name}]'" in text


def test_server_without_token_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TABLEAU_SERVER_URL", "https://tableau.example.test")
    for var in ("TABLEAU_PAT_NAME", "TABLEAU_PAT_SECRET", "FRAUDWATCH_SECRETS_DIR"):
        monkeypatch.delenv(var, raising=False)
    with pytest.raises(UserError, match="personal access token"):
        tableau.server_from_environment("fraudwatch")


def test_no_server_means_files_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TABLEAU_SERVER_URL", raising=False)
    assert tableau.server_from_environment("fraudwatch") is None
