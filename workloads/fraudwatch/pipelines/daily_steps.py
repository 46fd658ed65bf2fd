"""The steps of the fraudwatch_daily DAG as plain functions of (config, logical date): land,
check, features, score, check the scores, publish, evaluate the alert conditions, retain.
steps.py names them for Airflow and the pods' command line; retrain_steps.py holds those of
fraudwatch_retrain. Every step writes only under its logical date's folders and replaces them
whole, so a rerun or a backfill of a date replaces that date's outputs. The data (raw,
features, scored, reports) lives below `data_root`, a local folder or an s3:// prefix
(locations/storage.py, written whole by locations/atomic.py); the model registry and
notifications stay below the local `home`.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

import duckdb
import numpy as np

from fraudwatch.errors import UserError
from fraudwatch.locations import atomic, storage
from fraudwatch.models.registry import ModelRegistry
from fraudwatch.pipelines import quality
from fraudwatch.pipelines.config import PipelineConfig
from fraudwatch.pipelines.notifications import notify

log = logging.getLogger("fraudwatch.pipelines")

RAW_REQUIRED = ("tx_id", "user_id", "ts", "amount", "tx_type")


class StepSkipped(Exception):
    """The step is switched off by configuration (Airflow marks the task skipped)."""


def logical_date(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise UserError(f"logical date {value!r} is not a date; use YYYY-MM-DD") from None


def write_json(path: Path | str, payload: dict) -> None:
    """A JSON file written whole, locally or on S3."""
    atomic.write_text(path, json.dumps(payload, indent=2, sort_keys=True, default=str) + "\n")


def _report(config: PipelineConfig, day: str, name: str, payload: dict) -> dict:
    write_json(storage.join(config.reports_dir(day), f"{name}.json"), payload)
    for line in payload.get("checks", []):
        log.info("%s %s: %s", name, day, line)
    return payload


def _sql(query: str, **tables) -> list[tuple]:
    """DuckDB over pyarrow datasets (local or S3, read by pyarrow): `tables` are the names the
    query uses. DuckDB's own S3 support (httpfs) would download an extension at run time."""
    con = duckdb.connect()
    con.sql("SET TimeZone = 'UTC'")
    for name, table in tables.items():
        con.register(name, table)
    return con.sql(query).fetchall()


def check_data_root(config: PipelineConfig) -> None:
    """An s3:// data root needs the S3 settings in the environment; say which are missing."""
    if config.data_on_s3:
        storage.check_s3_settings(config.data_root, "data_root")


# ---- fraudwatch_daily ------------------------------------------------------------------------


def land(config: PipelineConfig, day: str) -> dict:
    """The day's raw events into raw/DAY (replaced whole on a rerun)."""
    d = logical_date(day)
    if config.source == "kafka":
        return _land_from_kafka(config, d)
    from fraudwatch.generator.population import GeneratorConfig
    from fraudwatch.generator.writer import generate

    demo = config.demo
    generator = GeneratorConfig(
        users=demo.users,
        transactions=demo.transactions,
        seed=demo.seed + d.toordinal(),
        start=d,
        days=1,
        fraud_rate=demo.fraud_rate,
    )
    if config.data_on_s3:  # staged locally, uploaded aside, swapped in, manifest last
        with atomic.written_whole(config.data, f"raw/{day}", ["manifest.json"]) as staged:
            summary = generate(generator, staged, workers=1, overwrite=True)
    else:
        summary = generate(generator, config.raw_dir(day), workers=1, overwrite=True)
    return {"raw": str(config.raw_dir(day)), "counts": summary.counts}


def _land_from_kafka(config: PipelineConfig, d: date) -> dict:
    """The day's events from the Kafka topics into raw/DAY (fraudwatch land, landing.py)."""
    from fraudwatch.landing import land_day

    k = config.kafka
    bootstrap = k.bootstrap or os.environ.get("FRAUDWATCH_KAFKA_BOOTSTRAP", "")
    if not bootstrap:
        raise UserError(
            "source: kafka needs the brokers: set kafka.bootstrap in the pipeline config "
            "or $FRAUDWATCH_KAFKA_BOOTSTRAP in the worker's environment"
        )
    lateness = k.max_lateness_minutes
    summary = land_day(
        bootstrap,
        d,
        config.raw_dir(d.isoformat()),
        k.topic_prefix,
        clock_skew=timedelta(minutes=k.clock_skew_minutes),
        max_lateness=None if lateness is None else timedelta(minutes=lateness),
        timeout_s=float(k.timeout_seconds),
    )
    if summary.dead_letters:
        log.warning(
            "%d malformed records of %s are in %s/_landing/date=%s/dead-letter.jsonl",
            summary.dead_letters,
            d,
            config.raw_dir(d.isoformat()),
            d,
        )
    return {
        "raw": str(config.raw_dir(d.isoformat())),
        "counts": summary.counts,
        "dead_letters": summary.dead_letters,
    }


def check_raw(config: PipelineConfig, day: str) -> dict:
    raw = config.raw_dir(day)
    tx = storage.dataset(storage.join(raw, "transactions"))
    if tx is None:
        raise quality.DataQualityError(f"raw transactions for {day}: no files under {raw}")
    nulls = ", ".join(f"count(*) - count({c})" for c in RAW_REQUIRED)
    row = _sql(f"SELECT count(*), {nulls}, min(ts)::DATE, max(ts)::DATE FROM tx", tx=tx)[0]
    rows, null_counts, first, last = row[0], row[1 : 1 + len(RAW_REQUIRED)], row[-2], row[-1]
    checks = [
        quality.check_row_count(
            f"raw transactions for {day}", rows, config.quality.min_transactions
        ),
        quality.check_null_rates(
            f"raw transactions for {day}",
            dict(zip(RAW_REQUIRED, null_counts, strict=True)),
            rows,
            config.quality.max_null_rate,
        ),
    ]
    if str(first) != day or str(last) != day:
        raise quality.DataQualityError(
            f"raw transactions for {day}: timestamps run from {first} to {last}; the "
            "partition holds events of another day"
        )
    checks.append(f"raw transactions for {day}: every timestamp on {day}")
    return _report(config, day, "check_raw", {"rows": rows, "checks": checks})


def features(config: PipelineConfig, day: str) -> dict:
    """Per-user features of the day, kept for analysts (scoring computes the same ones)."""
    import pyarrow.parquet as pq

    from fraudwatch.features.engine import connect, has_table, read_raw
    from fraudwatch.features.transactions import REQUIRED_COLUMNS, transaction_features
    from fraudwatch.features.users import user_features

    raw = config.raw_dir(day)
    con = connect(config.engine)
    tx = read_raw(con, raw, "transactions", REQUIRED_COLUMNS)
    logins = read_raw(con, raw, "logins", {"user_id": "int"}) if has_table(raw, "logins") else None
    table = user_features(transaction_features(tx), logins).order_by("user_id").to_pyarrow()
    with atomic.written_whole(config.data, f"features/{day}") as tmp:
        pq.write_table(table, tmp / "users.parquet", compression="zstd")
    checks = [quality.check_row_count(f"user features for {day}", table.num_rows, 1)]
    return _report(config, day, "features", {"users": table.num_rows, "checks": checks})


def score_options(
    config: PipelineConfig, models_dir: Path | None = None, iforest: dict | None = None
):
    from fraudwatch.models.bundle import ModelSettings
    from fraudwatch.models.iforest import IForestParams
    from fraudwatch.scoring.pipeline import ScoreOptions

    settings = ModelSettings(iforest=IForestParams(**(iforest or {})))
    return ScoreOptions(
        engine=config.engine,
        models=list(config.models),
        fit_users=config.fit_users,
        settings=settings,
        models_dir=models_dir,
    )


def score(config: PipelineConfig, day: str) -> dict:
    """Score the day with the promoted model version (bootstrapping one if allowed)."""
    from fraudwatch.scoring.pipeline import score as run_score

    registry = ModelRegistry(config.registry_root)
    raw = config.raw_dir(day)
    bootstrap = registry.promoted() is None and config.bootstrap_models
    models_dir = None if bootstrap else registry.promoted_path()
    # Written locally, then renamed (local) or staged and swapped in, run.json last (S3).
    with atomic.written_whole(config.data, f"scored/{day}", ["run.json"]) as out:
        summary = run_score(raw, out, score_options(config, models_dir), overwrite=True)
        if bootstrap:
            version = registry.add(out / "models" / summary.model_version)
    if bootstrap:
        registry.promote(version, f"bootstrap: first model, fitted on {day}", summary.evaluation)
        log.info("no promoted model: fitted %s on %s and promoted it", version, day)
    return {
        "scored": str(config.scored_dir(day)),
        "model_version": summary.model_version,
        "transactions": summary.transactions,
        "users": summary.users,
    }


def _previous_scored_day(config: PipelineConfig, day: str) -> str | None:
    """The latest complete scored day (its run.json written) before `day`."""
    earlier = [d for d in storage.subfolders(config.data_location("scored")) if d < day]
    for d in reversed(earlier):
        if storage.is_file(storage.join(config.scored_dir(d), "run.json")):
            return d
    return None


def _scored_transactions(config: PipelineConfig, day: str):
    scored = config.scored_dir(day)
    if not storage.is_file(storage.join(scored, "run.json")):
        raise UserError(f"{scored} is not a complete scored day (no run.json); run score first")
    return storage.dataset(storage.join(scored, "transactions"))


def _ensemble_scores(config: PipelineConfig, day: str) -> np.ndarray:
    column = _scored_transactions(config, day).to_table(columns=["ensemble_score"])[0]
    return column.to_numpy(zero_copy_only=False).astype(np.float64)


def check_scores(config: PipelineConfig, day: str) -> dict:
    raw = storage.dataset(storage.join(config.raw_dir(day), "transactions"))
    raw_rows = raw.count_rows() if raw is not None else 0
    rows, nulls, distinct = _sql(
        "SELECT count(*), count(*) - count(ensemble_score), count(DISTINCT tx_id) FROM tx",
        tx=_scored_transactions(config, day),
    )[0]
    current = _ensemble_scores(config, day)
    previous_day = _previous_scored_day(config, day)
    baseline = _ensemble_scores(config, previous_day) if previous_day else None
    checks = [
        quality.check_same_count(f"scored transactions for {day}", rows, raw_rows),
        quality.check_same_count(f"distinct scored transactions for {day}", distinct, raw_rows),
        quality.check_null_rates(
            f"scores for {day}", {"ensemble_score": nulls}, rows, config.quality.max_null_rate
        ),
        quality.check_in_range(f"ensemble scores for {day}", current[~np.isnan(current)], 0, 1),
        quality.check_score_shift(
            f"scores for {day}", baseline, current, config.quality.max_score_shift
        ),
    ]
    return _report(
        config, day, "check_scores", {"rows": rows, "baseline_day": previous_day, "checks": checks}
    )


def _publish(config: PipelineConfig, day: str, target: str, enabled: bool) -> dict:
    if not enabled:
        raise StepSkipped(f"publishing to {target} is off (publish.{target}: false)")
    # The publisher replaces the documents of the scored run it is given, so a rerun of a
    # date does not duplicate them (see docs/airflow.md). It runs as the real command, in a
    # child process, so its exit status and one-line error are what the task reports.
    args = ["publish", "--to", target, "--scored", str(config.scored_dir(day))]
    if target == "tableau":
        args += ["--out", str(config.root / "tableau" / day)]  # one extract per date, replaced
    done = subprocess.run(
        [sys.executable, "-c", "from fraudwatch.cli import main; main()", *args],
        capture_output=True,
        text=True,
    )
    log.info("%s", done.stdout.strip())
    if done.returncode:
        reason = (done.stderr.strip().splitlines() or ["no error output"])[-1]
        raise UserError(f"fraudwatch {' '.join(args)} exited with {done.returncode}: {reason}")
    return {"published": target, "scored": str(config.scored_dir(day))}


def publish_elasticsearch(config: PipelineConfig, day: str) -> dict:
    return _publish(config, day, "elasticsearch", config.publish.elasticsearch)


def publish_tableau(config: PipelineConfig, day: str) -> dict:
    return _publish(config, day, "tableau", config.publish.tableau)


def evaluate_alerts(config: PipelineConfig, day: str) -> dict:
    """Evaluate the alert conditions on the day's scores; write alerts.json; notify."""
    scored = config.scored_dir(day)
    cond = config.alerts
    critical = _sql(
        f"SELECT count(*) FROM tx WHERE ensemble_score >= {float(cond.score_threshold)}",
        tx=_scored_transactions(config, day),
    )[0][0]
    users = storage.read_table(storage.join(scored, "users.parquet"), columns=["flagged"])
    flagged_users = _sql("SELECT count(*) FROM users WHERE flagged", users=users)[0][0]
    fired = []
    if critical > cond.max_critical_transactions:
        fired.append(
            f"{critical} transactions scored >= {cond.score_threshold} "
            f"(more than {cond.max_critical_transactions})"
        )
    if flagged_users > cond.max_flagged_users:
        fired.append(f"{flagged_users} users flagged (more than {cond.max_flagged_users})")
    payload = {
        "date": day,
        "critical_transactions": critical,
        "flagged_users": flagged_users,
        "fired": fired,
    }
    write_json(storage.join(config.reports_dir(day), "alerts.json"), payload)
    if fired:
        notify(config, f"fraudwatch_daily {day}: alert conditions hold: " + "; ".join(fired))
    return payload


def retain(config: PipelineConfig, day: str) -> dict:
    """Enforce privacy.retention in every configured store (`fraudwatch privacy retain`,
    docs/privacy.md), counted back from the day after DAY: the day the run of DAY happens, so
    a rerun or backfill of DAY removes what a run on that day would have removed. The stores
    are the data root, the pipeline home, and those the environment names
    (FRAUDWATCH_ELASTICSEARCH_URL, FRAUDWATCH_STATE_URL, the Kafka bootstrap)."""
    from fraudwatch.pipelines.retention import from_config
    from fraudwatch.privacy.retain import carry_out, plan

    policy, stores = from_config(config)
    return carry_out(plan(policy, stores, today=logical_date(day) + timedelta(days=1)))
