"""`fraudwatch_daily` in local mode, end to end with dag.test() on a small generated day:
the outputs appear, a rerun of the date replaces them with the same content (no duplicates),
the next day is compared with it, the last task removes the day folders older than the
retention policy (privacy.retention, counted back from the day after the logical date), and
a failed quality check stops the run with a reason. Publishing to Elasticsearch and Tableau is
switched off here (its default in local mode): those tasks are expected to be skipped."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from conftest import load_dag, small_config

DAY_1 = datetime(2026, 3, 2, tzinfo=UTC)
DAY_2 = datetime(2026, 3, 3, tzinfo=UTC)


def _run(dag, when: datetime) -> dict[str, str]:
    run = dag.test(logical_date=when)
    states = {ti.task_id: str(ti.state) for ti in run.get_task_instances()}
    return {"run": str(run.state), **states}


def _round(value):
    """Floats to 10 significant digits: DuckDB's parallel aggregation may differ in the last
    bit from run to run (summation order), which is not a change a user could see."""
    if isinstance(value, float):
        return float(f"{value:.10g}")
    if isinstance(value, dict):
        return {k: _round(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_round(v) for v in value]
    return value


#: What a run measures of itself rather than computes: when it ran, and each stage's wall
#: seconds and memory (run.json's `stages`). A rerun differs there and nowhere else.
RUN_MEASUREMENTS = ("created_at", "at", "stages")


def _without_times(value):
    if isinstance(value, dict):
        return {k: _without_times(v) for k, v in value.items() if k not in RUN_MEASUREMENTS}
    if isinstance(value, list):
        return [_without_times(v) for v in value]
    return value


def snapshot(home: Path) -> dict[str, str]:
    """Every output file under the pipeline's data root → a digest of its content (Parquet by
    rows, JSON without wall-clock times and the run's measurements of itself). The notification log is left out: a rerun that
    finds the same alert conditions notifies again, by design."""
    out = {}
    for path in sorted(p for p in home.rglob("*") if p.is_file()):
        if path.name == "notifications.jsonl":
            continue
        key = str(path.relative_to(home))
        if path.suffix == ".parquet":
            rows = _round(pq.read_table(path).to_pylist())
            text = json.dumps(rows, default=str)
        elif path.suffix == ".json":
            text = json.dumps(_without_times(json.loads(path.read_text())), sort_keys=True)
        elif path.suffix == ".jsonl":
            text = json.dumps(
                [_without_times(json.loads(x)) for x in path.read_text().split("\n") if x]
            )
        elif path.suffix == ".joblib":
            text = "model file"  # pickles may differ byte-wise; the scores they give are compared
        else:
            text = path.read_text()
        out[key] = hashlib.sha256(text.encode()).hexdigest()
    return out


#: Day folders of earlier runs, planted before the first run. Run of DAY_1 counts back from
#: 2026-03-03: raw/features (90 days) keep 2025-12-03 on, reports (365 days) 2025-03-03 on.
OLD_DAYS = {
    "raw/2025-12-02": "removed by the run of DAY_1",
    "features/2025-12-02": "removed by the run of DAY_1",
    "scored/2025-11-20": "removed by the run of DAY_1",
    "reports/2025-03-02": "removed by the run of DAY_1",
    "raw/2025-12-03": "kept by DAY_1, removed by DAY_2",
    "reports/2025-03-03": "kept by DAY_1, removed by DAY_2",
    "scored/2025-12-10": "kept by both",
    "reports/2025-12-02": "kept by both",
}


def _plant_old_days(home: Path) -> None:
    for folder in OLD_DAYS:
        path = home / folder / "old.json"
        path.parent.mkdir(parents=True)
        path.write_text('{"planted": true}\n')


def _present(home: Path) -> set[str]:
    return {folder for folder in OLD_DAYS if (home / folder).exists()}


@pytest.fixture(scope="module")
def daily(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("daily")
    home = tmp / "home"
    _plant_old_days(home)
    with pytest.MonkeyPatch.context() as mp:
        # The retention step reaches only the stores of this run: no Elasticsearch, Kafka or
        # intervention state store from the environment or a config file of this machine.
        mp.setenv("FRAUDWATCH_HOME", str(tmp / "fraudwatch-home"))
        for name in (
            "FRAUDWATCH_ELASTICSEARCH_URL",
            "FRAUDWATCH_STATE_URL",
            "FRAUDWATCH_CONFIG",
            "FRAUDWATCH_KAFKA_BOOTSTRAP",
        ):
            mp.delenv(name, raising=False)
        dag = load_dag("fraudwatch_daily.py", small_config(home), tmp, mp)
        first = _run(dag, DAY_1)
        after_first = snapshot(home)
        present_after_first = _present(home)
        second = _run(dag, DAY_1)
        after_second = snapshot(home)
        third = _run(dag, DAY_2)
        present_after_third = _present(home)
    return {
        "home": home,
        "states": (first, second, third),
        "snapshots": (after_first, after_second),
        "old_days": (present_after_first, present_after_third),
    }


def test_daily_run_succeeds_with_publishing_skipped(daily):
    for states in daily["states"]:
        assert states["run"] == "success", states
        assert states["publish_elasticsearch"] == "skipped"
        assert states["publish_tableau"] == "skipped"
        assert states["evaluate_alerts"] == "success"
        assert states["retain"] == "success"


def test_retain_removes_the_days_older_than_the_policy_and_keeps_the_rest(daily):
    after_first, after_third = daily["old_days"]
    assert after_first == {
        "raw/2025-12-03",
        "reports/2025-03-03",
        "scored/2025-12-10",
        "reports/2025-12-02",
    }
    assert after_third == {"scored/2025-12-10", "reports/2025-12-02"}
    home = daily["home"]
    # The runs' own days are within the policy and stay; removed days leave no trash behind.
    for day in ("2026-03-02", "2026-03-03"):
        for folder in ("raw", "features", "scored", "reports"):
            assert (home / folder / day).is_dir(), (folder, day)
    assert not any(p.is_file() for p in (home / "_retention-trash").rglob("*"))


def test_daily_run_leaves_the_scored_day_and_its_reports(daily):
    home = daily["home"]
    raw = json.loads((home / "raw/2026-03-02/manifest.json").read_text())
    scored = home / "scored/2026-03-02"
    transactions = pq.read_table(scored / "transactions" / "part-0.parquet")
    assert transactions.num_rows == raw["counts"]["transactions"] == 10_000
    assert pq.read_table(scored / "users.parquet").num_rows == raw["counts"]["users"]
    scores = transactions["ensemble_score"].to_pylist()
    assert all(0 <= s <= 1 for s in scores)
    assert scores == sorted(scores, reverse=True)  # ranked, most anomalous first
    reports = home / "reports/2026-03-02"
    assert "10,000 rows (minimum 100)" in " ".join(
        json.loads((reports / "check_raw.json").read_text())["checks"]
    )
    alerts = json.loads((reports / "alerts.json").read_text())
    assert alerts["date"] == "2026-03-02" and alerts["flagged_users"] > 0
    assert (home / "features/2026-03-02/users.parquet").is_file()


def test_first_run_bootstraps_a_promoted_model_that_later_runs_reuse(daily):
    home = daily["home"]
    promoted = (home / "models/promoted").read_text().strip()
    assert [p.name for p in (home / "models/versions").iterdir()] == [promoted]
    for day in ("2026-03-02", "2026-03-03"):
        run = json.loads((home / f"scored/{day}/run.json").read_text())
        assert run["model_version"] == promoted


def test_rerunning_a_date_replaces_its_outputs_with_the_same_content(daily):
    after_first, after_second = daily["snapshots"]
    assert set(after_second) == set(after_first)  # no new files: nothing duplicated
    changed = [k for k in after_first if after_first[k] != after_second[k]]
    assert changed == [], changed


def test_next_day_scores_are_compared_with_the_previous_day(daily):
    report = json.loads((daily["home"] / "reports/2026-03-03/check_scores.json").read_text())
    assert report["baseline_day"] == "2026-03-02"
    assert any("PSI" in line for line in report["checks"])


def test_failed_quality_check_stops_the_run_and_notifies_the_reason(tmp_path, monkeypatch):
    home = tmp_path / "home"
    config = small_config(home, quality={"min_transactions": 1_000_000})
    states = _run(load_dag("fraudwatch_daily.py", config, tmp_path, monkeypatch), DAY_1)
    assert states["run"] == "failed"
    assert states["land"] == "success"
    assert states["check_raw"] == "failed"
    assert states["score"] == "upstream_failed"
    assert not (home / "scored").exists()  # nothing downstream of the failed check ran
    messages = [
        json.loads(line)["message"]
        for line in (home / "notifications.jsonl").read_text().splitlines()
    ]
    assert len(messages) == 1
    assert "fraudwatch_daily 2026-03-02: task check_raw failed" in messages[0]
    assert "10,000 rows, fewer than the minimum 1,000,000" in messages[0]
