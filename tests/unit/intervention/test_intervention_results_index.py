"""The scored results are served from an index built when the service loads them: re-scored
results are served as the new ranking (never a stale index), an unchanged directory is not
indexed again, and results in a directory the service cannot write are still served."""

from __future__ import annotations

import shutil
from pathlib import Path

import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from fraudwatch.errors import UserError
from fraudwatch.intervention.results import AnomalyFilter, ScoredResults
from fraudwatch.intervention.results_index import INDEX_DIR
from scored_fixture import N_USERS, write_scored


def top_user(reader: ScoredResults) -> int:
    items, total = reader.anomalies(AnomalyFilter(), limit=1)
    assert total == N_USERS
    return int(items[0]["user_id"])


def test_rescored_results_are_served_as_the_new_ranking(tmp_path: Path) -> None:
    scored = write_scored(tmp_path / "scored")
    first = ScoredResults(scored, home=tmp_path / "home")
    assert top_user(first) == 1
    assert first.index_path.parent == scored / INDEX_DIR
    # Re-scored: user 40 is now the most anomalous one.
    users = pq.read_table(scored / "users.parquet")
    flipped = users.set_column(
        users.schema.get_field_index("ensemble_score"),
        "ensemble_score",
        pc.subtract(1.0, users["ensemble_score"]),
    )
    pq.write_table(flipped, scored / "users.parquet")
    second = ScoredResults(scored, home=tmp_path / "home")
    assert top_user(second) == N_USERS
    assert second.index_path != first.index_path
    assert [p.name for p in (scored / INDEX_DIR).glob("results-*.duckdb")] == [
        second.index_path.name
    ]
    first.close()
    second.close()


def test_an_unchanged_directory_is_not_indexed_again(tmp_path: Path) -> None:
    scored = write_scored(tmp_path / "scored")
    first = ScoredResults(scored, home=tmp_path / "home")
    built = first.index_path.stat().st_mtime_ns
    second = ScoredResults(scored, home=tmp_path / "home")
    assert second.index_path == first.index_path
    assert second.index_path.stat().st_mtime_ns == built
    assert second.user(3) == first.user(3) is not None
    assert "serving index" in second.describe()


def test_results_where_no_index_can_be_written_are_indexed_under_the_home(
    tmp_path: Path,
) -> None:
    scored = write_scored(tmp_path / "scored")
    # The index folder cannot be made beside the results (as on a read-only volume; the tests
    # may run as root, for whom permission bits do not stop a write).
    (scored / INDEX_DIR).write_text("not a directory")
    reader = ScoredResults(scored, home=tmp_path / "home")
    assert top_user(reader) == 1
    assert (tmp_path / "home" / "serving-index") in reader.index_path.parents
    assert (scored / INDEX_DIR).read_text() == "not a directory"


def test_a_directory_without_results_is_a_user_error_naming_the_fix(tmp_path: Path) -> None:
    scored = write_scored(tmp_path / "scored")
    shutil.rmtree(scored / "transactions")
    with pytest.raises(UserError) as err:
        ScoredResults(scored, home=tmp_path / "home")
    assert "fraudwatch demo" in str(err.value) and "--scored" in str(err.value)
