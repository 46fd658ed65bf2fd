"""The simulated analyst: deterministic per seed, and it honours coverage, error rate and
delay; bad settings and data without ground truth are refused with the key to fix."""

from __future__ import annotations

from datetime import timedelta

import duckdb
import pyarrow.parquet as pq
import pytest
from fraudwatch.contract.scored_directory import open_scored
from fraudwatch.errors import UserError
from fraudwatch.feedback.analyst import ACTOR, AnalystSettings, simulate
from fraudwatch.feedback.labels import read_dispositions

from .conftest import run_cli


@pytest.fixture(scope="module")
def truth(scored) -> dict[int, int]:
    users = pq.read_table(scored / "users.parquet", columns=["user_id", "flagged", "label"])
    return {r["user_id"]: r["label"] for r in users.to_pylist() if r["flagged"]}


def test_same_seed_same_dispositions_other_seed_others(scored):
    settings = AnalystSettings(seed=3, coverage=0.5, error_rate=0.2)
    assert simulate(scored, settings) == simulate(scored, settings)
    assert simulate(scored, settings) != simulate(scored, AnalystSettings(seed=4, coverage=0.5))


def test_full_coverage_without_errors_judges_every_flagged_user_by_the_truth(scored, truth):
    found = simulate(scored, AnalystSettings(coverage=1.0, error_rate=0.0))
    assert {d.user_id: int(d.label == "fraud") for d in found} == truth
    assert 0 < sum(truth.values()) < len(truth)  # both verdicts occur
    version = open_scored(scored).model_version
    assert {(d.actor, d.model_version) for d in found} == {(ACTOR, version)}


def test_coverage_and_error_rate_are_honoured(scored, truth):
    assert simulate(scored, AnalystSettings(coverage=0.0)) == []
    flipped = simulate(scored, AnalystSettings(coverage=1.0, error_rate=1.0))
    assert all(int(d.label == "fraud") != truth[d.user_id] for d in flipped)
    n = len(truth)
    half = simulate(scored, AnalystSettings(seed=1, coverage=0.5, error_rate=0.0))
    assert 0.25 * n <= len(half) <= 0.75 * n
    noisy = simulate(scored, AnalystSettings(seed=1, coverage=1.0, error_rate=0.25))
    wrong = sum(int(d.label == "fraud") != truth[d.user_id] for d in noisy)
    assert 0 < wrong <= 0.5 * n


def test_a_control_sample_reviews_users_below_the_alert_line(scored, truth):
    users = pq.read_table(scored / "users.parquet", columns=["user_id", "flagged", "label"])
    below = {r["user_id"]: r["label"] for r in users.to_pylist() if not r["flagged"]}
    settings = AnalystSettings(seed=2, coverage=0.0, error_rate=0.0, control_share=0.1)
    found = simulate(scored, settings)
    assert found == simulate(scored, settings)
    assert {d.user_id for d in found} <= set(below)  # coverage 0: none from the queue
    assert 0.05 * len(below) <= len(found) <= 0.15 * len(below)
    assert all(int(d.label == "fraud") == (below[d.user_id] or 0) for d in found)
    assert all(d.reason.startswith("simulated control review") for d in found)
    both = simulate(
        scored, AnalystSettings(seed=2, coverage=1.0, error_rate=0.0, control_share=0.1)
    )
    assert {d.user_id for d in both} == set(truth) | {d.user_id for d in found}


def test_verdicts_come_after_the_users_last_transaction_by_the_delay(scored):
    found = simulate(scored, AnalystSettings(coverage=1.0, delay_days=2.0))
    db = duckdb.connect()
    db.sql("SET TimeZone = 'UTC'")
    rows = db.sql(
        f"SELECT user_id, max(ts), list(tx_id) FROM read_parquet('{scored}/transactions/*.parquet')"
        " GROUP BY 1"
    ).fetchall()
    last = {u: (ts, {str(t) for t in txs}) for u, ts, txs in rows}
    for d in found:
        ts, txs = last[d.user_id]
        assert timedelta(days=1) <= d.ts - ts <= timedelta(days=3)
        assert d.tx_id in txs  # the verdict names one of the user's own transactions


def test_bad_settings_name_the_option():
    with pytest.raises(UserError, match="--coverage"):
        AnalystSettings(coverage=1.5)
    with pytest.raises(UserError, match="--error-rate"):
        AnalystSettings(error_rate=-0.1)
    with pytest.raises(UserError, match="--delay-days"):
        AnalystSettings(delay_days=-1)
    with pytest.raises(UserError, match="--control-share"):
        AnalystSettings(control_share=2.0)


def test_data_without_ground_truth_is_refused(scored, tmp_path):
    import shutil

    import pyarrow.compute as pc

    copy = tmp_path / "scored"
    shutil.copytree(scored, copy)
    users = pq.read_table(copy / "users.parquet")
    index = users.schema.get_field_index("label")
    nulls = pc.cast(pc.if_else(pc.is_valid(users["label"]), None, None), users["label"].type)
    pq.write_table(users.set_column(index, "label", nulls), copy / "users.parquet")
    with pytest.raises(UserError, match="no ground truth"):
        simulate(copy, AnalystSettings())


def test_command_writes_a_dispositions_file(scored, tmp_path):
    out = tmp_path / "dispositions.jsonl"
    args = ["feedback", "simulate", "--scored", str(scored), "--out", str(out), "--seed", "2"]
    result = run_cli(*args, "--coverage", "0.8", "--error-rate", "0.05", "--delay-days", "2")
    assert result.returncode == 0, result.stderr
    expected = sorted(simulate(scored, AnalystSettings(seed=2)), key=lambda d: (d.ts, d.user_id))
    assert read_dispositions(out) == expected
    bad = run_cli(*args[:-2], "--coverage", "3")
    assert bad.returncode == 2 and "--coverage" in bad.stdout + bad.stderr
