"""`fraudwatch_daily` with `source: kafka` and its data root on a real Ceph S3 gateway
(tests/servers/ceph.py, radosgw with path-style addressing): the DAG lands the middle of three
days produced to a real Kafka broker into `s3://BUCKET/pipeline/raw/DAY/`, checks it, scores it
into `scored/DAY/`, checks the scores and publishes the Tableau extract — every step reading
and writing S3 through pyarrow. A rerun of the date leaves the same objects with the same
content (nothing duplicated, no staging leftovers); the next day's score shift is measured
against the previous day's scores on S3. Stale objects planted in the day's folders before the
rerun are gone after it. Missing S3 settings fail the run at once, naming the configuration key
and the variables. `fraudwatch_retrain` reads its window from the same kind of data root."""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import UTC, datetime

import pyarrow.dataset as ds
import pyarrow.fs as pafs
import pyarrow.parquet as pq
import pytest
from conftest import load_dag, s3_environment, small_config
from test_daily_local import _round, _run, _without_times
from test_daily_publish import _extract_rows

DAY = datetime(2026, 3, 2, tzinfo=UTC)
DAY_S = "2026-03-02"
NEXT = datetime(2026, 3, 3, tzinfo=UTC)
NEXT_S = "2026-03-03"
LANDING_MANIFEST = f"raw/{DAY_S}/_landing/date={DAY_S}/manifest.json"


def _fs() -> pafs.S3FileSystem:
    from fraudwatch.locations import storage

    return storage.s3_filesystem()


def s3_snapshot(bucket: str, prefix: str) -> dict[str, str]:
    """Every object below s3://bucket/prefix → a digest of its content (Parquet by rows, JSON
    without wall-clock times), keyed by its path below the prefix."""
    fs = _fs()
    selector = pafs.FileSelector(f"{bucket}/{prefix}", allow_not_found=True, recursive=True)
    out = {}
    for info in fs.get_file_info(selector):
        if info.type != pafs.FileType.File:
            continue  # directory markers
        key = info.path[len(bucket) + len(prefix) + 2 :]
        if key.endswith(".parquet"):
            rows = _round(pq.read_table(info.path, filesystem=fs).to_pylist())
            text = json.dumps(rows, default=str)
        elif key.endswith(".joblib"):
            text = "model file"  # pickles may differ byte-wise; the scores they give are compared
        else:
            with fs.open_input_stream(info.path) as stream:
                raw = stream.read()
            if key.endswith(".json"):
                text = json.dumps(_without_times(json.loads(raw)), sort_keys=True)
            else:
                text = raw.hex()
        out[key] = hashlib.sha256(text.encode()).hexdigest()
    return out


def _read_json(bucket: str, key: str) -> dict:
    with _fs().open_input_stream(f"{bucket}/{key}") as stream:
        return json.loads(stream.read())


def _rows(bucket: str, key: str) -> int:
    return ds.dataset(f"{bucket}/{key}", filesystem=_fs(), format="parquet").count_rows()


def _plant_stale_objects(bucket: str, prefix: str) -> list[str]:
    """Extra objects in the day's folders, as a previous version of the pipeline (or a
    landing with more partitions) could have left: a rerun must replace the day whole, so
    they must be gone afterwards (a copy of a part file would also double the rows)."""
    fs = _fs()
    root = f"{bucket}/{prefix}"
    pairs = {
        f"raw/{DAY_S}/transactions/date={DAY_S}/part-kafka.parquet": "part-stale.parquet",
        f"scored/{DAY_S}/transactions/part-0.parquet": "part-stale.parquet",
        f"features/{DAY_S}/users.parquet": "stale.parquet",
    }
    planted = []
    for source, name in pairs.items():
        target = f"{source.rsplit('/', 1)[0]}/{name}"
        fs.copy_file(f"{root}/{source}", f"{root}/{target}")
        planted.append(target)
    return planted


@pytest.fixture(scope="module", autouse=True)
def s3_settings(ceph_s3):
    """The gateway's settings in the environment for this module only."""
    with s3_environment(ceph_s3):
        yield ceph_s3


@pytest.fixture(scope="module")
def daily_s3(produced, s3_settings, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("daily-s3")
    home = tmp / "home"
    bucket, prefix = f"fraudwatch-airflow-{uuid.uuid4().hex[:8]}", "pipeline"
    config = small_config(
        home,
        source="kafka",
        data_root=f"s3://{bucket}/{prefix}",
        kafka={"bootstrap": produced["bootstrap"], "topic_prefix": produced["prefix"]},
        publish={"tableau": True},
    )
    extract = home / "tableau" / DAY_S / "fraudwatch-transactions.hyper"
    with pytest.MonkeyPatch.context() as mp:
        dag = load_dag("fraudwatch_daily.py", config, tmp, mp)
        first = _run(dag, DAY)
        after_first = s3_snapshot(bucket, prefix)
        extract_first = _extract_rows(extract)
        planted = _plant_stale_objects(bucket, prefix)
        second = _run(dag, DAY)
        after_second = s3_snapshot(bucket, prefix)
        extract_second = _extract_rows(extract)
        third = _run(dag, NEXT)
    return {
        "home": home,
        "bucket": bucket,
        "prefix": prefix,
        "states": (first, second, third),
        "snapshots": (after_first, after_second),
        "extract": (extract_first, extract_second),
        "planted": planted,
    }


def test_every_task_succeeds_on_s3(daily_s3):
    for states in daily_s3["states"]:
        assert states["run"] == "success", states
        assert states["land"] == "success" and states["check_scores"] == "success"
        assert states["publish_tableau"] == "success"
        assert states["publish_elasticsearch"] == "skipped"


def test_the_landed_and_scored_day_are_on_s3_with_the_produced_counts(daily_s3, produced):
    bucket, root = daily_s3["bucket"], daily_s3["prefix"]
    expected = produced["day"]
    manifest = _read_json(bucket, f"{root}/{LANDING_MANIFEST}")
    assert manifest["counts"] == expected and manifest["dead_letters"] == 0
    for table, rows in expected.items():
        assert _rows(bucket, f"{root}/raw/{DAY_S}/{table}/date={DAY_S}") == rows
    scored = f"{root}/scored/{DAY_S}"
    run = _read_json(bucket, f"{scored}/run.json")
    assert run["counts"]["transactions"] == expected["transactions"]
    assert run["input"] == f"s3://{bucket}/{root}/raw/{DAY_S}"
    transactions = ds.dataset(f"{bucket}/{scored}/transactions", filesystem=_fs()).to_table()
    assert transactions.num_rows == expected["transactions"]
    assert len(set(transactions["tx_id"].to_pylist())) == expected["transactions"]
    assert all(0 <= s <= 1 for s in transactions["ensemble_score"].to_pylist())
    assert _rows(bucket, f"{scored}/users.parquet") == run["counts"]["users"]
    assert _rows(bucket, f"{root}/features/{DAY_S}/users.parquet") == run["counts"]["users"]
    check = _read_json(bucket, f"{root}/reports/{DAY_S}/check_raw.json")
    assert check["rows"] == expected["transactions"]
    assert _read_json(bucket, f"{root}/reports/{DAY_S}/alerts.json")["date"] == DAY_S
    # The Tableau extract was built from the scored day on S3.
    assert daily_s3["extract"][0] == expected["transactions"]


def test_the_data_is_on_s3_only_and_no_staging_is_left(daily_s3):
    home = daily_s3["home"]
    for folder in ("raw", "features", "scored", "reports"):
        assert not (home / folder).exists(), folder
    assert (home / "models" / "promoted").is_file()  # the registry stays local
    snapshot = daily_s3["snapshots"][1]
    assert [k for k in snapshot if "_staging" in k] == []


def test_rerunning_the_date_leaves_identical_objects(daily_s3):
    after_first, after_second = daily_s3["snapshots"]
    # Stale objects planted in the day's folders before the rerun are gone: replaced whole.
    assert [k for k in daily_s3["planted"] if k in after_second] == []
    assert sorted(after_second) == sorted(after_first)  # no object added or lost
    # The landing manifest records when it ran; everything else must be identical.
    changed = [k for k in after_first if after_first[k] != after_second[k]]
    assert changed == [LANDING_MANIFEST] or changed == [], changed
    first, second = daily_s3["extract"]
    assert second == first


def test_the_next_day_is_compared_with_the_previous_scored_day_on_s3(daily_s3, produced):
    bucket, root = daily_s3["bucket"], daily_s3["prefix"]
    report = _read_json(bucket, f"{root}/reports/{NEXT_S}/check_scores.json")
    assert report["baseline_day"] == DAY_S
    assert any("PSI" in line for line in report["checks"])
    assert report["rows"] == produced["days"][NEXT_S]["transactions"]


def test_missing_s3_settings_fail_the_run_naming_the_key(tmp_path, monkeypatch):
    for variable in ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "someone")
    home = tmp_path / "home"
    config = small_config(home, data_root="s3://fraudwatch-nowhere/pipeline")
    states = _run(load_dag("fraudwatch_daily.py", config, tmp_path, monkeypatch), DAY)
    assert states["run"] == "failed"
    assert states["land"] == "failed" and states["check_raw"] == "upstream_failed"
    message = (home / "notifications.jsonl").read_text()
    assert (
        "task land failed: land: data_root is s3://fraudwatch-nowhere/pipeline but the S3 "
        "settings are missing from the worker's environment: set AWS_ENDPOINT_URL_S3 "
        "(or AWS_ENDPOINT_URL), AWS_SECRET_ACCESS_KEY"
    ) in message


def test_retraining_reads_its_window_from_s3(tmp_path, monkeypatch):
    """fraudwatch_retrain with the data root on S3 (a demo deployment): the window's missing
    days are generated onto S3, the training days copied down to the local retrain folder, the
    held-out day scored straight from S3, and the first candidate promoted."""
    bucket = f"fraudwatch-retrain-{uuid.uuid4().hex[:8]}"
    home = tmp_path / "home"
    config = small_config(
        home,
        data_root=f"s3://{bucket}/pipeline",
        retrain={"window_days": 3, "min_days": 2},
    )
    run = load_dag("fraudwatch_retrain.py", config, tmp_path, monkeypatch).test(
        logical_date=datetime(2026, 3, 9, tzinfo=UTC)
    )
    states = {t.task_id: str(t.state) for t in run.get_task_instances()}
    assert str(run.state) == "success", states
    for day in ("2026-03-07", "2026-03-08", "2026-03-09"):
        manifest = _read_json(bucket, f"pipeline/raw/{day}/manifest.json")
        assert manifest["counts"]["transactions"] == 10_000, day
    train_input = home / "retrain/2026-03-09/train_input/transactions"
    assert sorted(p.name for p in train_input.iterdir()) == ["date=2026-03-07", "date=2026-03-08"]
    assert not (home / "raw").exists()
    gate = json.loads((home / "retrain/2026-03-09/gate.json").read_text())
    assert gate["promoted"] and gate["now_promoted"] == gate["candidate"]
