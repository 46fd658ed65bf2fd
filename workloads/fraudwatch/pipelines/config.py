"""The pipelines' configuration: one YAML (or JSON) file, every key optional, defaults below.

The DAG files read the file named by $FRAUDWATCH_PIPELINE_CONFIG (or the defaults when it is
unset). In Kubernetes mode the resolved configuration travels to each pod as JSON in the
same variable's `_JSON` twin, so the pods need no file. See docs/airflow.md for every key.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any

from fraudwatch.contract.events import DEFAULT_TOPIC_PREFIX
from fraudwatch.errors import UserError
from fraudwatch.locations.home import fraudwatch_home
from fraudwatch.privacy.retention_policy import RetentionPolicy
from fraudwatch.scoring.thresholds import THRESHOLDS

CONFIG_ENV = "FRAUDWATCH_PIPELINE_CONFIG"
CONFIG_JSON_ENV = "FRAUDWATCH_PIPELINE_CONFIG_JSON"
MODES = ("local", "kubernetes")
SOURCES = ("generate", "kafka")
RUNNERS = ("inprocess", "spark-submit")


@dataclass
class DemoSource:
    """What `source: generate` makes for each logical date (one day of events)."""

    users: int = 2_000
    transactions: int = 20_000
    seed: int = 42  # the day's seed is seed + the date's ordinal: reruns get identical data
    fraud_rate: float = 0.01


@dataclass
class KafkaSource:
    """Where `source: kafka` lands each logical date from (`fraudwatch land`, landing.py)."""

    bootstrap: str = ""  # HOST:PORT[,...]; empty = $FRAUDWATCH_KAFKA_BOOTSTRAP
    topic_prefix: str = DEFAULT_TOPIC_PREFIX
    clock_skew_minutes: int = 60  # how early (broker time) a day's event may reach Kafka
    max_lateness_minutes: int | None = None  # None: read every partition to its end
    timeout_seconds: int = 30  # no answer from Kafka for this long fails the task


@dataclass
class LocalSettings:
    """How local mode runs the steps that compute (features, score, train, evaluate)."""

    runner: str = "inprocess"  # inprocess: PythonOperator; spark-submit: SparkSubmitOperator
    spark_conn_id: str = "fraudwatch_spark"  # Airflow connection: conn_type spark, host local[*]
    spark_home: str = ""  # a Spark (or pip pyspark) folder: SPARK_HOME, its bin/ first on PATH
    spark_python: str = ""  # PYSPARK_PYTHON of the submitted step; empty = Spark's default
    spark_conf: dict[str, str] = field(
        default_factory=lambda: {"spark.driver.memory": "2g", "spark.sql.shuffle.partitions": "8"}
    )


@dataclass
class QualityThresholds:
    """Checks between steps; a breach fails the run with the reason in the task log."""

    min_transactions: int = 100  # raw transactions landed for the day
    max_null_rate: float = 0.01  # share of nulls allowed in each required column
    max_score_shift: float = 0.25  # population stability index vs the previous day's scores


@dataclass
class AlertConditions:
    """Conditions evaluated after scoring; the day's alerts.json lists those that hold."""

    # A transaction at or above this ensemble score is critical (scoring/thresholds.py).
    score_threshold: float = THRESHOLDS.critical_at
    max_critical_transactions: int = 50
    max_flagged_users: int = 100


@dataclass
class PublishTargets:
    """Publishing steps; off by default so a local run needs no servers."""

    elasticsearch: bool = False
    tableau: bool = False


@dataclass
class RetrainSettings:
    window_days: int = 7  # days of raw data (up to the logical date) the candidate sees
    min_days: int = 2  # fewer days than this available: the run fails with a clear reason
    tolerance: float = 0.02  # candidate may be this much worse (absolute) on a gate metric
    gate_metrics: list[str] = field(
        default_factory=lambda: ["users.ensemble.pr_auc", "transactions.ensemble.roc_auc"]
    )
    iforest: dict[str, Any] = field(default_factory=dict)  # IForestParams overrides
    # Analysts' verdicts as labels (docs/feedback.md): a dispositions file (.parquet, .jsonl or
    # the .json of GET /v1/dispositions); empty = no labels, the models stay unsupervised.
    dispositions: str = ""
    min_labels: int = 30  # labelled users before the cut-off needed to learn ensemble weights
    min_gate_labels: int = 10  # labelled users on the held-out day needed to gate on labels
    label_tolerance: float = 0.05  # candidate may be this much worse on a label metric


@dataclass
class Resources:
    cpu_request: str = "500m"
    memory_request: str = "1Gi"
    cpu_limit: str = "2"
    memory_limit: str = "4Gi"


@dataclass
class SparkSettings:
    spark_version: str = "4.0.0"
    driver_cores: int = 1
    driver_memory: str = "2g"
    executor_instances: int = 2
    executor_cores: int = 1
    executor_memory: str = "2g"


@dataclass
class KubernetesSettings:
    namespace: str = "fraudwatch"
    image: str = "fraudwatch:0.1.0"
    image_pull_policy: str = "IfNotPresent"
    service_account: str = "fraudwatch-batch"
    data_pvc: str = "fraudwatch-data"  # mounted at home_in_pod in every pod
    home_in_pod: str = "/var/lib/fraudwatch"
    # A Secret whose keys become every step pod's environment (envFrom), for an s3:// data_root:
    # AWS_ENDPOINT_URL_S3, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY. Empty: none.
    s3_secret: str = ""
    resources: Resources = field(default_factory=Resources)
    spark: SparkSettings = field(default_factory=SparkSettings)
    score_with_spark: bool = True  # score as a SparkApplication instead of a plain pod


@dataclass
class PrivacySettings:
    """Personal data (docs/privacy.md): days each data class is kept, enforced in every store
    by `fraudwatch privacy retain`."""

    retention: RetentionPolicy = field(default_factory=RetentionPolicy)


@dataclass
class PipelineConfig:
    mode: str = "local"
    home: str = ""  # local root (models, notifications, retrain); empty = $FRAUDWATCH_HOME/pipeline
    data_root: str = ""  # raw, features, scored, reports: a folder or s3://BUCKET/PREFIX; "" = home
    source: str = "generate"
    engine: str = "duckdb"  # feature engine in local mode: duckdb or spark
    models: list[str] = field(default_factory=lambda: ["iforest", "autoencoder", "lstm"])
    fit_users: int = 20_000
    bootstrap_models: bool = True  # no promoted model yet: fit one on the day and promote it
    retries: int = 3
    retry_delay_seconds: int = 60  # doubled on each retry (exponential back-off)
    max_retry_delay_seconds: int = 1_800
    alert_webhook_env: str = "FRAUDWATCH_ALERT_WEBHOOK_URL"  # env var holding the URL
    demo: DemoSource = field(default_factory=DemoSource)
    kafka: KafkaSource = field(default_factory=KafkaSource)
    local: LocalSettings = field(default_factory=LocalSettings)
    quality: QualityThresholds = field(default_factory=QualityThresholds)
    alerts: AlertConditions = field(default_factory=AlertConditions)
    publish: PublishTargets = field(default_factory=PublishTargets)
    retrain: RetrainSettings = field(default_factory=RetrainSettings)
    kubernetes: KubernetesSettings = field(default_factory=KubernetesSettings)
    privacy: PrivacySettings = field(default_factory=PrivacySettings)

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise UserError(f"pipeline mode {self.mode!r} is unknown; use one of {MODES}")
        if self.source not in SOURCES:
            raise UserError(f"pipeline source {self.source!r} is unknown; use one of {SOURCES}")
        if self.local.runner not in RUNNERS:
            raise UserError(f"local.runner {self.local.runner!r} is unknown; use one of {RUNNERS}")
        if self.retrain.tolerance < 0:
            raise UserError("retrain.tolerance must be >= 0 (an absolute metric difference)")
        if self.retrain.label_tolerance < 0:
            raise UserError(
                "retrain.label_tolerance must be >= 0 (an absolute difference of precision or "
                "recall on labelled users)"
            )
        if self.retrain.min_labels < 10:  # twice feedback/learning.py's MIN_PER_CLASS
            raise UserError(
                f"retrain.min_labels = {self.retrain.min_labels} is too small to learn from; "
                "use at least 10 (docs/feedback.md)"
            )
        if self.data_root.startswith("s3://") and "/" not in self.data_root[5:].strip("/"):
            raise UserError(
                f"data_root {self.data_root!r}: use s3://BUCKET/PREFIX (a bucket alone is not "
                "a data root)"
            )

    # ---- where things are --------------------------------------------------------------------

    @property
    def root(self) -> Path:
        """The local root: the model registry, notifications, retraining, Tableau extracts."""
        return Path(self.home) if self.home else fraudwatch_home() / "pipeline"

    @property
    def data(self) -> Path | str:
        """The data root of raw, features, scored and reports: a Path, or an s3:// string."""
        if self.data_root.startswith("s3://"):
            return self.data_root.rstrip("/")
        return Path(self.data_root) if self.data_root else self.root

    @property
    def data_on_s3(self) -> bool:
        return isinstance(self.data, str)

    def data_location(self, *parts: str) -> Path | str:
        if isinstance(self.data, str):
            return "/".join([self.data, *parts])
        return self.data.joinpath(*parts)

    # Folders are named by the bare date, not Hive-style `date=...`: DuckDB would read a
    # `key=value` path segment as a partition column into the scored tables.
    def raw_dir(self, day: str) -> Path | str:
        return self.data_location("raw", day)

    def scored_dir(self, day: str) -> Path | str:
        return self.data_location("scored", day)

    def features_dir(self, day: str) -> Path | str:
        return self.data_location("features", day)

    def reports_dir(self, day: str) -> Path | str:
        return self.data_location("reports", day)

    @property
    def registry_root(self) -> Path:
        return self.root / "models"

    @property
    def notifications_file(self) -> Path:
        return self.root / "notifications.jsonl"

    def as_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)


def _build(cls: type, values: dict[str, Any], where: str) -> Any:
    """A dataclass from a dict, refusing unknown keys with the list of known ones."""
    if not isinstance(values, dict):
        raise UserError(f"{where or 'pipeline config'} must be a mapping, got {values!r}")
    known = {f.name: f for f in fields(cls)}
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise UserError(
            f"unknown key(s) {unknown} in {where or 'pipeline config'}; known: {sorted(known)}"
        )
    kwargs = {}
    for name, value in values.items():
        factory = known[name].default_factory
        default = factory() if callable(factory) else None
        if is_dataclass(default) and not isinstance(default, type):
            kwargs[name] = _build(type(default), value, f"{where}.{name}".lstrip("."))
        else:
            kwargs[name] = value
    return cls(**kwargs)


def parse_config(values: dict[str, Any]) -> PipelineConfig:
    return _build(PipelineConfig, values, "")


def load_config(path: Path | str | None = None) -> PipelineConfig:
    """The configuration from `path`, $FRAUDWATCH_PIPELINE_CONFIG_JSON, the file named by
    $FRAUDWATCH_PIPELINE_CONFIG, or the defaults — the first that is given."""
    if path is None and os.environ.get(CONFIG_JSON_ENV):
        return parse_config(json.loads(os.environ[CONFIG_JSON_ENV]))
    path = path or os.environ.get(CONFIG_ENV)
    if not path:
        return PipelineConfig()
    path = Path(path)
    if not path.is_file():
        raise UserError(f"pipeline config {path} does not exist; fix ${CONFIG_ENV} or create it")
    text = path.read_text()
    if path.suffix in (".yaml", ".yml"):
        import yaml  # Airflow and the infra tooling ship PyYAML; JSON needs nothing

        values = yaml.safe_load(text) or {}
    else:
        values = json.loads(text)
    return parse_config(values)
