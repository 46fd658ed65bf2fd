"""`fraudwatch privacy retain` on local disk and a SQLite state store: exactly the days older
than each class's policy go, whole; a dry run lists them and removes nothing; a bad policy is
refused with the key and the fix."""

from __future__ import annotations

import json
import os
import subprocess
from datetime import date, timedelta
from pathlib import Path

import pyarrow.dataset as ds
import pytest
from fraudwatch.generator.population import GeneratorConfig
from fraudwatch.generator.writer import generate
from fraudwatch.intervention.stores.sqlite import SqliteStore
from retention_store_records import backdate_approvals, populate, survivors
from subject_records import fraudwatch

TODAY = date(2026, 3, 31)
#: Short retentions so a month of folders spans every case.
POLICY = {"raw_events": 10, "scored_results": 20, "alerts_and_interventions": 30, "audit": 400}


def retain(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return fraudwatch("privacy", "retain", *args, env=env)


def write_config(tmp_path: Path, retention: dict, **extra: object) -> Path:
    config = {
        "home": str(tmp_path / "home"),
        "data_root": str(tmp_path / "data"),
        "retrain": {"window_days": 7},
        "privacy": {"retention": retention},
        **extra,
    }
    path = tmp_path / "pipeline.json"
    path.write_text(json.dumps(config))
    return path


def day_folder(folder: Path, manifest: str | None = None) -> None:
    folder.mkdir(parents=True)
    (folder / "part-0.parquet").write_bytes(b"PAR1")
    if manifest:
        (folder / manifest).write_text("{}")


@pytest.fixture
def pipeline_data(tmp_path: Path) -> dict[str, list[str]]:
    """40 days of the pipelines' folders: raw, features, scored, reports, Tableau, retrain."""
    days = [(TODAY - timedelta(days=n)).isoformat() for n in range(40)]
    for day in days:
        day_folder(tmp_path / "data" / "raw" / day / "transactions", None)
        (tmp_path / "data" / "raw" / day / "manifest.json").write_text("{}")
        day_folder(tmp_path / "data" / "features" / day)
        day_folder(tmp_path / "data" / "scored" / day, "run.json")
        day_folder(tmp_path / "data" / "reports" / day, "alerts.json")
        day_folder(tmp_path / "home" / "tableau" / day)
        day_folder(tmp_path / "home" / "retrain" / day / "train_input")
    (tmp_path / "data" / "scored" / "_staging").mkdir()  # not a day: never touched
    return {"days": days}


def kept_days(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name[:1].isdigit())


def first_kept(days: int) -> str:
    return (TODAY - timedelta(days=days)).isoformat()


def test_each_class_keeps_exactly_its_days(tmp_path: Path, pipeline_data) -> None:
    config = write_config(tmp_path, POLICY)
    result = retain("--config", str(config), "--today", TODAY.isoformat())
    assert result.returncode == 0, result.stderr
    data = tmp_path / "data"
    expected = {
        data / "raw": 10,
        data / "features": 10,
        data / "scored": 20,
        data / "reports": 30,
        tmp_path / "home" / "tableau": 20,
        tmp_path / "home" / "retrain": 10,
    }
    for folder, days in expected.items():
        kept = kept_days(folder)
        assert kept == sorted(d for d in pipeline_data["days"] if d >= first_kept(days)), folder
        assert len(kept) == days + 1  # the cut-off day itself and the days after it, to today
    assert (data / "scored" / "_staging").is_dir()
    # Every removal is named in the log, and nothing is left half-way in the trash.
    oldest = pipeline_data["days"][-1]
    assert str(data / "raw" / oldest) in result.stderr.replace("\n", "")
    assert "removed raw_events partition" in result.stderr
    assert not any((data / "_retention-trash").iterdir())


def test_a_second_run_finds_nothing(tmp_path: Path, pipeline_data) -> None:
    config = write_config(tmp_path, POLICY)
    assert retain("--config", str(config), "--today", TODAY.isoformat()).returncode == 0
    again = retain("--config", str(config), "--today", TODAY.isoformat())
    assert again.returncode == 0, again.stderr
    assert "nothing is older than the policy" in again.stderr


def test_a_dry_run_lists_what_would_go_and_removes_nothing(tmp_path: Path, pipeline_data) -> None:
    config = write_config(tmp_path, POLICY)
    before = sorted(str(p) for p in tmp_path.rglob("*"))
    result = retain("--config", str(config), "--today", TODAY.isoformat(), "--dry-run")
    assert result.returncode == 0, result.stderr
    assert sorted(str(p) for p in tmp_path.rglob("*")) == before
    # 40 days: 29 raw + 29 features + 19 scored + 9 reports + 19 Tableau + 29 retrain folders.
    assert "dry run: 134 change(s) listed, nothing removed" in result.stderr
    assert "would change" in result.stderr


def test_a_partition_left_in_the_trash_is_removed_by_the_next_run(
    tmp_path: Path, pipeline_data
) -> None:
    held = tmp_path / "data" / "_retention-trash" / "scored-2026-01-01-deadbeef"
    day_folder(held, "run.json")
    config = write_config(tmp_path, POLICY)
    result = retain("--config", str(config), "--today", TODAY.isoformat())
    assert result.returncode == 0, result.stderr
    assert not held.exists()
    assert "left in the trash by an earlier run" in result.stderr


def test_raw_date_partitions_of_generated_data(tmp_path: Path) -> None:
    """A `generate`d raw folder (date=DAY partitions of three tables and the users table):
    the old days go from every table, the users and the recent days stay readable."""
    raw = tmp_path / "raw"
    generate(
        GeneratorConfig(users=200, transactions=3_000, seed=5, start=date(2026, 3, 1), days=30),
        raw,
        workers=1,
        chunk_users=200,
    )
    config = write_config(tmp_path, POLICY)
    result = retain("--config", str(config), "--raw", str(raw), "--today", TODAY.isoformat())
    assert result.returncode == 0, result.stderr
    cutoff = first_kept(POLICY["raw_events"])
    for table in ("transactions", "logins", "api_calls"):
        days = sorted(p.name.removeprefix("date=") for p in (raw / table).iterdir())
        assert days and days[0] == cutoff, table
        times = ds.dataset(str(raw / table), format="parquet").to_table(columns=["ts"])
        assert times.column("ts").to_pylist() and min(times.column("ts").to_pylist()).date() >= (
            date.fromisoformat(cutoff)
        )
    assert ds.dataset(str(raw / "users"), format="parquet").count_rows() == 200


def test_state_store_records_older_than_the_policy_go(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite3"
    store = SqliteStore(path)
    populate(store)
    backdate_approvals(store)
    config = write_config(tmp_path, POLICY)
    result = retain(
        "--config", str(config), "--state-url", f"sqlite:///{path}", "--today", TODAY.isoformat()
    )
    assert result.returncode == 0, result.stderr
    assert survivors(store) == {
        "dispositions": ["d2"],
        "decisions": ["9002"],
        "profiles": ["202", "203"],  # 203 is locked: an open case keeps its profile
        "approvals": ["204"],  # pending: still waiting for a decision
        "sessions": ["live"],
    }
    assert "removed 1 dispositions record(s) from the state store" in result.stderr


@pytest.mark.parametrize(
    ("retention", "message"),
    [
        (
            {"raw_events": 0},
            "privacy.retention.raw_events = 0 is not a number of days; set it to a whole "
            "number of at least 1",
        ),
        (
            {"audit": "forever"},
            "privacy.retention.audit = 'forever' is not a number of days",
        ),
        (
            {"scored_results": True},
            "privacy.retention.scored_results = True is not a number of days",
        ),
        (
            {"raw": 30},
            "unknown key(s) ['raw'] in privacy.retention; known: ['alerts_and_interventions', "
            "'audit', 'raw_events', 'scored_results']",
        ),
        (
            {"raw_events": 5},
            "privacy.retention.raw_events = 5 is shorter than retrain.window_days = 7",
        ),
    ],
)
def test_a_bad_policy_names_the_key_and_the_fix(
    tmp_path: Path, pipeline_data, retention: dict, message: str
) -> None:
    config = write_config(tmp_path, retention)
    result = retain("--config", str(config), "--today", TODAY.isoformat())
    assert result.returncode == 2
    assert message in " ".join(result.stderr.split())
    assert len(kept_days(tmp_path / "data" / "raw")) == 40  # nothing was removed


def test_the_defaults_are_the_documented_ones() -> None:
    from fraudwatch.pipelines.config import PipelineConfig

    policy = PipelineConfig().privacy.retention
    text = " ".join((Path(__file__).parents[3] / "docs" / "privacy.md").read_text().split())
    for data_class in policy.data_classes():
        assert f"| `{data_class}` | {policy.days(data_class)} days |" in text


def test_a_pipeline_step_runs_the_same_job_without_the_command_line(
    tmp_path: Path, pipeline_data
) -> None:
    """What the daily DAG's retention step calls: the same policy and stores from the
    pipeline configuration, the same changes, and a summary it can pass on as XCom."""
    from fraudwatch.pipelines.config import load_config
    from fraudwatch.pipelines.retention import from_config
    from fraudwatch.privacy.retain import carry_out, plan

    policy, stores = from_config(load_config(write_config(tmp_path, POLICY)), environ={})
    done = carry_out(plan(policy, stores, today=TODAY))
    assert done == {"local disk: remove partition": 134}
    assert len(kept_days(tmp_path / "data" / "scored")) == POLICY["scored_results"] + 1
    assert carry_out(plan(policy, stores, today=TODAY)) == {}


def test_the_state_store_is_found_in_the_services_own_config(tmp_path: Path) -> None:
    """Without --state-url the job ages out the store the intervention service's config names
    (the deployments keep a password in that file, never on a command line)."""
    path = tmp_path / "service-state.sqlite3"
    store = SqliteStore(path)
    populate(store)
    home = Path(os.environ["FRAUDWATCH_HOME"])
    home.mkdir(parents=True)
    (home / "intervention.toml").write_text(f'[state]\nurl = "sqlite:///{path}"\n')
    result = retain("--config", str(write_config(tmp_path, POLICY)), "--today", TODAY.isoformat())
    assert result.returncode == 0, result.stderr
    assert survivors(store)["dispositions"] == ["d2"]
