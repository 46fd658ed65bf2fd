"""`fraudwatch stream`: Spark Structured Streaming from Kafka to Elasticsearch and alerts.

Per micro-batch (`foreachBatch`, on the driver):
1. every record is validated against its topic's schema (`streaming.schemas`); a record that
   fails goes to the dead-letter topic with the reason, the source position and the original
   bytes: nothing is dropped silently;
2. valid transactions are turned into the model's per-transaction features against their
   users' kept history (`streaming.user_history`) and scored with the model version from
   --models-dir (`scoring.batches.score_table`);
3. scored transactions are bulk-indexed with id `<tx_id>:<model_version>` (a replay
   overwrites, never duplicates), riding out an Elasticsearch outage within a retry budget;
4. transactions with ensemble_score >= threshold go to the intervention service's
   Watcher hook;
5. the batch's transactions join their users' history.
Spark commits the batch's offsets to the checkpoint only after the function returns; a
failure anywhere re-runs the same batch (same offsets) after a restart. See docs/streaming.md.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from fraudwatch import settings as fw_settings
from fraudwatch import storage
from fraudwatch.errors import UserError
from fraudwatch.features.transactions import CONTEXT_COLUMNS
from fraudwatch.publish.elasticsearch import (
    RetryBudget,
    bootstrap_write_index,
    bulk_index,
    connect,
)
from fraudwatch.scoring.thresholds import THRESHOLDS
from fraudwatch.streaming.alerts import AlertForwarder
from fraudwatch.streaming.kafka_security import KafkaSecurity
from fraudwatch.streaming.produce import ensure_topics, producer_config
from fraudwatch.streaming.schemas import (
    DEAD_LETTER,
    DEFAULT_TOPIC_PREFIX,
    TOPICS,
    InvalidEvent,
    validate,
)
from fraudwatch.streaming.user_history import DEFAULT_PER_USER, FILE_NAME, UserHistory

DEFAULT_INDEX = "fraudwatch-transactions"
#: The fields of a streamed document: those of the fraudwatch-transactions index template
#: (dashboards/elasticsearch/), which maps strictly. A test checks the two agree.
DOCUMENT_FIELDS = (
    *CONTEXT_COLUMNS,
    "persona",
    "hour",
    "label",
    "scenario",
    "iforest_score",
    "copod_score",
    "autoencoder_score",
    "lstm_score",
    "ensemble_score",
    "reasons",
    "top_features",
    "flagged",
    "model_version",
    "record_type",
    "scored_at",
)
RAW_TRANSACTION_SCHEMA = pa.schema(
    [
        ("tx_id", pa.int64()),
        ("user_id", pa.int64()),
        ("ts", pa.timestamp("us", tz="UTC")),
        ("amount", pa.float64()),
        ("currency", pa.string()),
        ("tx_type", pa.string()),
        ("channel", pa.string()),
        ("ip", pa.string()),
        ("device_id", pa.string()),
        ("country", pa.string()),
        ("counterparty", pa.string()),
        ("status", pa.string()),
        ("label", pa.int8()),
        ("scenario", pa.string()),
    ]
)
#: The first patch release of a Spark line whose spark-sql-kafka *and* its
#: spark-token-provider-kafka are both on Maven Central (4.0.1-4.0.5 lack the latter).
_KAFKA_CONNECTOR_RELEASE = {"4.0": "4.0.0"}


@dataclass
class StreamSettings:
    bootstrap_servers: str
    #: A fixed model version folder (SCORED/models/<version>), or None with `registry`.
    models_dir: Path | None
    es_url: str
    #: Spark's checkpoint: a local folder, or s3://BUCKET/PREFIX (Spark writes it through s3a).
    checkpoint: str | Path
    topic_prefix: str = DEFAULT_TOPIC_PREFIX
    es_index: str = DEFAULT_INDEX
    #: Flag (and forward to intervention) at this ensemble score; None: the model version's
    #: own `flag_at` (its manifest's thresholds, from scoring/thresholds.py).
    threshold: float | None = None
    intervention_url: str | None = None
    trigger_seconds: float = 5.0
    available_now: bool = False  # process what is in the topics, then stop
    max_offsets_per_trigger: int = 20_000
    starting_offsets: str = "earliest"
    es_retry_for_s: float = 300.0
    history_per_user: int = DEFAULT_PER_USER
    #: Instead of models_dir, a model registry: each micro-batch scores with its promoted version, so a
    #: promotion by the retraining DAG reaches the stream without a restart.
    registry: Path | None = None
    #: Local folder for the users' history (default: next to a local checkpoint; for an
    #: s3:// checkpoint, a folder under $FRAUDWATCH_HOME named after the checkpoint).
    state_dir: Path | None = None
    spark_options: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.threshold is not None and not 0.0 <= self.threshold <= 1.0:
            raise UserError(f"--threshold {self.threshold} must be between 0 and 1")
        if self.trigger_seconds <= 0:
            raise UserError(f"--trigger-seconds {self.trigger_seconds} must be positive")
        if self.starting_offsets not in ("earliest", "latest"):
            raise UserError("--starting-offsets must be earliest or latest")
        if (self.models_dir is None) == (self.registry is None):
            raise UserError(
                "give exactly one of --models-dir (a fixed model version) and --registry "
                "(follow the promoted version)"
            )
        if self.es_retry_for_s <= 0:
            raise UserError(f"--es-retry-for {self.es_retry_for_s} must be positive")
        if self.history_per_user < 1:
            raise UserError(f"--history-per-user {self.history_per_user} must be at least 1")

    @property
    def checkpoint_on_s3(self) -> bool:
        return storage.is_s3(str(self.checkpoint))

    @property
    def spark_checkpoint(self) -> str:
        """The checkpoint location as Spark names it (s3:// is read through s3a://)."""
        location = str(self.checkpoint)
        return location.replace("s3://", "s3a://", 1) if self.checkpoint_on_s3 else location

    @property
    def history_path(self) -> Path:
        """The users' kept history belongs to the checkpoint: a replay from a fresh checkpoint
        starts from an empty history, as it starts from the first offsets. DuckDB needs a local
        file, so an s3:// checkpoint gets a local folder keyed by its location."""
        if self.state_dir is not None:
            return self.state_dir / FILE_NAME
        if not self.checkpoint_on_s3:
            return Path(self.checkpoint) / "fraudwatch-state" / FILE_NAME
        digest = hashlib.sha256(str(self.checkpoint).encode()).hexdigest()[:16]
        return fw_settings.home() / "stream-state" / digest / FILE_NAME


def kafka_connector_package() -> str:
    """Maven coordinate of spark-sql-kafka for the installed pyspark
    ($FRAUDWATCH_SPARK_KAFKA_PACKAGE overrides)."""
    override = os.environ.get("FRAUDWATCH_SPARK_KAFKA_PACKAGE")
    if override:
        return override
    import pyspark

    version = str(pyspark.__version__)
    line = ".".join(version.split(".")[:2])
    return (
        f"org.apache.spark:spark-sql-kafka-0-10_2.13:{_KAFKA_CONNECTOR_RELEASE.get(line, version)}"
    )


def streaming_session(extra: dict[str, str] | None = None, s3: bool = False) -> Any:
    """A Spark session with the Kafka connector (and s3a, for an s3:// checkpoint, against the
    configured endpoint); master and memory from the environment."""
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        raise UserError(
            "fraudwatch stream needs PySpark: pip install 'fraudwatch[spark]'"
        ) from None
    builder = (
        SparkSession.builder.appName("fraudwatch-stream")
        .master(os.environ.get("FRAUDWATCH_SPARK_MASTER", "local[2]"))
        .config("spark.driver.memory", os.environ.get("FRAUDWATCH_SPARK_DRIVER_MEMORY", "1g"))
        .config("spark.sql.shuffle.partitions", os.environ.get("FRAUDWATCH_SPARK_PARTITIONS", "2"))
        .config("spark.sql.session.timeZone", "UTC")
        # The UI (port 4040) is what a liveness probe can watch; off unless asked for.
        .config("spark.ui.enabled", os.environ.get("FRAUDWATCH_SPARK_UI", "false"))
    )
    packages = [kafka_connector_package()]
    if s3:
        from fraudwatch.features.engine import hadoop_aws_package

        packages.append(hadoop_aws_package())
        for key, value in storage.s3a_settings().items():
            builder = builder.config(key, value)
    builder = builder.config("spark.jars.packages", ",".join(packages))
    ivy = os.environ.get("FRAUDWATCH_SPARK_IVY")
    if ivy:
        builder = builder.config("spark.jars.ivy", ivy)
    for key, value in (extra or {}).items():
        builder = builder.config(key, value)
    return builder.getOrCreate()


# --- one micro-batch ----------------------------------------------------------------------
def _json_ready(value: Any) -> Any:
    if isinstance(value, float) and np.isnan(value):
        return None
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
    return value


def transaction_table(events: list[dict[str, Any]]) -> pa.Table:
    """Validated transaction events as a raw-transactions table, ordered by user and time."""
    columns = {name: [e.get(name) for e in events] for name in RAW_TRANSACTION_SCHEMA.names}
    table = pa.table(columns, schema=RAW_TRANSACTION_SCHEMA)
    return table.sort_by([("user_id", "ascending"), ("ts", "ascending"), ("tx_id", "ascending")])


def _feature_expression(
    source: Any, wanted: Any, context: bool, thresholds: dict[str, float] | None = None
) -> Any:
    """The batch job's features of `source` (the batch and its users' history) for the
    transactions whose tx_id is in `wanted.batch_tx_id`: only those rows, or with `context`
    every row and `in_batch` telling them apart; ordered by user and time."""
    import ibis

    from fraudwatch.features.transactions import transaction_features

    features = transaction_features(source, thresholds)
    if context:
        features = features.mutate(in_batch=features.tx_id.isin(wanted.batch_tx_id))
    else:
        features = features.semi_join(wanted, features.tx_id == wanted.batch_tx_id)
    return features.order_by(["user_id", "ts", "tx_id"]).mutate(persona=ibis.null("string"))


#: The names the compiled feature query reads: the transactions (the batch and its users'
#: history) and the batch's tx_ids.
_FEATURE_INPUT = "fraudwatch_feature_input"
_FEATURE_WANTED = "fraudwatch_feature_wanted"


#: A simple CASE over at least this many distinct strings, each giving a number and NULL
#: otherwise, is read from a lookup table in the compiled SQL (see `_compiled_sql`).
_LOOKUP_MIN_BRANCHES = 32


def _compiled_sql(features: Any) -> tuple[str, dict[str, tuple[tuple[str, str], ...]]]:
    """DuckDB SQL of the expression, with its long CASE tables read from lookup tables.

    The feature expression looks up country coordinates with a CASE over every country
    (`features.transactions._coordinate`), and the haversine formula reads them twelve times:
    binding those 2,500 branches is most of what the query costs on one user's rows, every
    time it runs. A scalar subquery on a table of the same (key, value) pairs gives the same
    value (NULL for a key not listed) and binds in a fraction of that time. Returns the SQL
    and the lookup tables it reads: name -> rows of (key, value as SQL)."""
    import sqlglot
    import sqlglot.expressions as sge
    from ibis.backends.sql.compilers.duckdb import compiler

    lookups: dict[str, tuple[tuple[str, str], ...]] = {}

    def pairs_of(node: Any) -> tuple[tuple[str, str], ...] | None:
        default = node.args.get("default")
        ifs = node.args.get("ifs") or []
        if node.this is None or len(ifs) < _LOOKUP_MIN_BRANCHES:
            return None
        if not (
            isinstance(default, sge.Cast)
            and isinstance(default.this, sge.Null)
            and default.to.is_type("double")
        ):
            return None
        pairs = []
        for branch in ifs:
            key, value = branch.this, branch.args.get("true")
            number = value.this if isinstance(value, sge.Neg) else value
            if not (isinstance(key, sge.Literal) and key.is_string):
                return None
            if not (isinstance(number, sge.Literal) and not number.is_string):
                return None
            pairs.append((str(key.this), value.sql(dialect="duckdb")))
        # CASE takes the first branch that matches: a table needs every key once.
        return tuple(pairs) if len({k for k, _ in pairs}) == len(pairs) else None

    def as_lookup(node: Any) -> Any:
        if not isinstance(node, sge.Case):
            return node
        pairs = pairs_of(node)
        if pairs is None:
            return node
        digest = hashlib.sha256(repr(pairs).encode()).hexdigest()[:16]
        name = f"fraudwatch_lookup_{digest}"
        lookups[name] = pairs
        operand = node.this.sql(dialect="duckdb")
        return sqlglot.parse_one(
            f"(SELECT lookup_value FROM {name} WHERE lookup_key = {operand})", read="duckdb"
        )

    tree = compiler.to_sqlglot(features.unbind())
    return tree.transform(as_lookup).sql(dialect="duckdb"), lookups


@dataclass(frozen=True)
class FeatureQuery:
    """The batch job's feature expression (`transaction_features`), compiled once to DuckDB
    SQL over named input tables: building and compiling the Ibis expression costs far more
    than running it on a micro-batch, let alone on one transaction (issue 19)."""

    sql: str
    #: The Ibis expression the SQL was compiled from: its schema types the result exactly as
    #: the backend's own `to_pyarrow` would.
    expr: Any
    #: The Arrow schema the inputs are given in (what `ibis.memtable` would register).
    input_schema: pa.Schema
    wanted_schema: pa.Schema
    #: The lookup tables the SQL reads (see `_compiled_sql`): name -> (key, value SQL) rows.
    lookups: dict[str, tuple[tuple[str, str], ...]] = field(default_factory=dict)
    #: Tells the compiled queries apart: the name of its prepared statement.
    key: int = 0

    @classmethod
    def build(
        cls, schema: pa.Schema, tx_id_type: pa.DataType, context: bool, thresholds: Any
    ) -> FeatureQuery:
        import ibis

        source = ibis.table(ibis.Schema.from_pyarrow(schema), name=_FEATURE_INPUT)
        wanted = ibis.table(
            ibis.Schema.from_pyarrow(pa.schema([("batch_tx_id", tx_id_type)])),
            name=_FEATURE_WANTED,
        )
        features = _feature_expression(source, wanted, context, dict(thresholds))
        sql, lookups = _compiled_sql(features)
        return cls(
            sql=sql,
            expr=features,
            input_schema=source.schema().to_pyarrow(),
            wanted_schema=wanted.schema().to_pyarrow(),
            lookups=lookups,
        )


#: Compiled queries by (input schema, tx_id type, context, reporting thresholds): the
#: thresholds are literals in the SQL, so a change of FRAUDWATCH_REPORTING_THRESHOLDS
#: compiles a new query.
_FEATURE_QUERIES: dict[tuple[Any, ...], FeatureQuery] = {}
_FEATURE_QUERIES_LOCK = threading.Lock()
#: One in-memory DuckDB connection per thread, with the queries it has prepared: the decision
#: route scores on several threads, and registered input tables are per connection.
_FEATURE_DB = threading.local()


def feature_query(schema: pa.Schema, tx_id_type: pa.DataType, context: bool) -> FeatureQuery:
    """The compiled feature query for inputs of this schema (compiled on first use)."""
    from fraudwatch.contract.regulatory import reporting_thresholds

    thresholds = tuple(sorted(reporting_thresholds().items()))
    key = (schema, tx_id_type, context, thresholds)
    query = _FEATURE_QUERIES.get(key)
    if query is None:
        with _FEATURE_QUERIES_LOCK:
            query = _FEATURE_QUERIES.get(key)
            if query is None:
                query = FeatureQuery.build(schema, tx_id_type, context, thresholds)
                query = replace(query, key=len(_FEATURE_QUERIES))
                _FEATURE_QUERIES[key] = query
    return query


class _FeatureConnection:
    """This thread's in-memory DuckDB connection and the feature queries it has prepared."""

    def __init__(self) -> None:
        import duckdb

        self.db = duckdb.connect()
        # As the Ibis backend sets up its connections.
        self.db.execute("SET TimeZone = 'UTC'")
        self.db.execute("SET python_enable_replacements = false")
        self.prepared: set[str] = set()

    @classmethod
    def of_this_thread(cls) -> _FeatureConnection:
        connection = getattr(_FEATURE_DB, "connection", None)
        if connection is None:
            connection = _FEATURE_DB.connection = cls()
        return connection

    def run(self, query: FeatureQuery, together: pa.Table, batch_tx_ids: pa.Array) -> pa.Table:
        """The query's features of `together` for the `batch_tx_ids`."""
        from ibis.backends.duckdb.converter import DuckDBPyArrowData

        statement = f"fraudwatch_features_{query.key}"
        self.db.register(_FEATURE_INPUT, together.cast(query.input_schema))
        self.db.register(_FEATURE_WANTED, pa.table([batch_tx_ids], schema=query.wanted_schema))
        try:
            if statement not in self.prepared:
                for name, rows in query.lookups.items():
                    values = ", ".join(
                        "('{}', {})".format(key.replace("'", "''"), value) for key, value in rows
                    )
                    self.db.execute(
                        f"CREATE TEMP TABLE IF NOT EXISTS {name} "
                        "(lookup_key VARCHAR, lookup_value DOUBLE)"
                    )
                    self.db.execute(f"DELETE FROM {name}")
                    self.db.execute(f"INSERT INTO {name} VALUES {values}")
                self.db.execute(f"PREPARE {statement} AS {query.sql}")
                self.prepared.add(statement)
            # A prepared statement: the SQL is parsed once per connection, and the relation
            # layer does not bind it a second time to learn its schema (binding is most of
            # what the query costs on a few rows).
            result = self.db.sql(f"EXECUTE {statement}").to_arrow_table()
        finally:
            self.db.unregister(_FEATURE_INPUT)
            self.db.unregister(_FEATURE_WANTED)
        return query.expr.__pyarrow_result__(result, data_mapper=DuckDBPyArrowData)


def batch_features(
    table: pa.Table, history: UserHistory | None = None, context: bool = False
) -> pa.Table:
    """Per-transaction features of a micro-batch's transactions, computed with the batch job's
    expression over the batch and (when given) its users' kept history, ordered by user and
    time. Only the batch's rows are returned, unless `context`: then the history's rows come
    too, with `in_batch` telling them apart (the LSTM reads them as the sequence so far).
    The expression is compiled once per input schema (`feature_query`) and run on this
    thread's DuckDB connection."""
    together = history.with_history(table) if history is not None else table
    tx_ids = table["tx_id"].combine_chunks()
    query = feature_query(together.schema, tx_ids.type, context)
    return _FeatureConnection.of_this_thread().run(query, together, tx_ids)


def batch_features_uncompiled(
    table: pa.Table, history: UserHistory | None = None, context: bool = False
) -> pa.Table:
    """`batch_features` as it was before the compiled query: the Ibis expression built and
    compiled on every call over in-memory tables, on a fresh connection. Kept as the bench's
    baseline and the test's reference (tests/unit/core/test_stream_features_compiled.py)."""
    import ibis

    together = history.with_history(table) if history is not None else table
    con = ibis.duckdb.connect()
    con.raw_sql("SET TimeZone = 'UTC'")
    wanted = ibis.memtable(table.select(["tx_id"]).rename_columns(["batch_tx_id"]))
    return con.to_pyarrow(_feature_expression(ibis.memtable(together), wanted, context))


def score_transactions(
    version: Any, table: pa.Table, history: UserHistory | None = None, compiled: bool = True
) -> pa.Table:
    """Features and scores of a micro-batch's transactions (see `batch_features`). With a
    history and an LSTM, the LSTM runs over each user's kept history and the batch, so that
    every transaction with an earlier one has an LSTM score, as in the batch job.
    `compiled=False` builds the feature expression afresh (the bench's baseline)."""
    from fraudwatch.scoring.batches import score_table

    features_of = batch_features if compiled else batch_features_uncompiled
    models = version.levels["transactions"]
    if history is None or "lstm" not in models.models:
        return score_table(models, features_of(table, history))
    features = features_of(table, history, context=True)
    keep = features["in_batch"].to_numpy(zero_copy_only=False).astype(bool)
    return score_table(models, features.drop_columns(["in_batch"]), keep=keep)


def documents(
    scored: pa.Table, model_version: str, threshold: float, scored_at: str
) -> list[tuple[str, dict[str, Any]]]:
    out = []
    for row in scored.to_pylist():
        row["flagged"] = bool(row["ensemble_score"] >= threshold)
        row["model_version"] = model_version
        row["record_type"] = "transaction"
        row["scored_at"] = scored_at
        source = {k: _json_ready(row.get(k)) for k in DOCUMENT_FIELDS if row.get(k) is not None}
        out.append((f"{row['tx_id']}:{model_version}", source))
    return out


def dead_letter_value(record: dict[str, Any], reason: str) -> bytes:
    value = record["value"]
    try:
        original = value.decode("utf-8") if value is not None else None
        encoding = "utf-8"
    except UnicodeDecodeError:
        import base64

        original, encoding = base64.b64encode(value).decode(), "base64"
    return json.dumps(
        {
            "reason": reason,
            "topic": record["topic"],
            "partition": record["partition"],
            "offset": record["offset"],
            "key": record["key"].decode("utf-8", "replace") if record["key"] else None,
            "payload": original,
            "payload_encoding": encoding,
            "failed_at": datetime.now(UTC).isoformat(timespec="seconds"),
        }
    ).encode()


@dataclass
class BatchResult:
    batch_id: int
    valid: dict[str, int]
    dead_lettered: int
    indexed: int
    alerts: int
    #: Bulk requests re-sent while Elasticsearch was unreachable or busy.
    es_retries: int = 0


class MicroBatchProcessor:
    """The foreachBatch function; holds the model version and the clients across batches."""

    def __init__(self, settings: StreamSettings) -> None:
        self.settings = settings
        self._registry: Any = None
        if settings.registry is not None:
            from fraudwatch.models.registry import ModelRegistry

            self._registry = ModelRegistry(settings.registry)
            self.version = self._load(self._registry.promoted_path())
        else:
            assert settings.models_dir is not None  # __post_init__ checked
            self.version = self._load(settings.models_dir)
        self.es = connect(settings.es_url)
        self.es_budget = RetryBudget(retries=None, seconds=settings.es_retry_for_s)
        self.history = UserHistory(
            settings.history_path, RAW_TRANSACTION_SCHEMA, settings.history_per_user
        )
        self.forwarder = (
            AlertForwarder(settings.intervention_url) if settings.intervention_url else None
        )
        self.dead_letter_topic = f"{settings.topic_prefix}{DEAD_LETTER}"
        self._producer: Any = None
        self.results: list[BatchResult] = []

    @staticmethod
    def _load(folder: Path) -> Any:
        from fraudwatch.models.bundle import ModelVersion

        version = ModelVersion.load(folder)
        if "transactions" not in version.levels:
            raise UserError(f"{folder} has no transaction-level models")
        return version

    def current_version(self) -> Any:
        """The model version this micro-batch scores with: the fixed one, or the registry's
        promoted one (re-read every batch; loaded again only when it changed)."""
        if self._registry is not None:
            promoted = self._registry.promoted()
            if promoted is not None and promoted != self.version.version:
                self.version = self._load(self._registry.path(promoted))
        return self.version

    def _dead_letter(self, failed: list[tuple[dict[str, Any], str]]) -> None:
        if not failed:
            return
        if self._producer is None:
            from confluent_kafka import Producer

            self._producer = Producer(producer_config(self.settings.bootstrap_servers))
        errors: list[str] = []

        def delivered(error: Any, _message: Any) -> None:
            if error is not None:
                errors.append(str(error))

        for record, reason in failed:
            self._producer.produce(
                self.dead_letter_topic,
                # Same source position, same key: consumers of the dead-letter topic can drop
                # the copies a replayed micro-batch produces.
                key=f"{record['topic']}:{record['partition']}:{record['offset']}".encode(),
                value=dead_letter_value(record, reason),
                headers={"fraudwatch-reason": reason[:500].encode()},
                on_delivery=delivered,
            )
        left = self._producer.flush(120)
        if left or errors:
            raise RuntimeError(
                f"dead-letter topic {self.dead_letter_topic} did not take {left or len(errors)} "
                f"records ({errors[:1]}); the micro-batch will be retried"
            )

    def flag_at(self, version: Any) -> float:
        """The score at which an event is flagged: --threshold, else the version's own."""
        if self.settings.threshold is not None:
            return self.settings.threshold
        return float(version.thresholds.get("flag_at", THRESHOLDS.flag_at))

    def process(self, records: list[dict[str, Any]], batch_id: int) -> BatchResult:
        prefix = self.settings.topic_prefix
        valid: dict[str, list[dict[str, Any]]] = {t: [] for t in TOPICS}
        failed: list[tuple[dict[str, Any], str]] = []
        for record in records:
            topic = record["topic"].removeprefix(prefix)
            try:
                event = validate(topic, record["value"])
                if str(event["user_id"]).encode() != (record["key"] or b""):
                    raise InvalidEvent(
                        f"record key {record['key']!r} is not the event's user_id "
                        f"{event['user_id']}"
                    )
                valid[topic].append(event)
            except InvalidEvent as exc:
                failed.append((record, str(exc)))
        self._dead_letter(failed)
        indexed = alerts = es_retries = 0
        if valid["transactions"]:
            table = transaction_table(valid["transactions"])
            version = self.current_version()
            scored = score_transactions(version, table, self.history)
            scored_at = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
            docs = documents(scored, version.version, self.flag_at(version), scored_at)
            report = bulk_index(self.es, self.settings.es_index, docs, budget=self.es_budget)
            indexed, es_retries = report.indexed, report.retries
            flagged = [(i, s) for i, s in docs if s["flagged"]]
            if self.forwarder is not None and flagged:
                self.forwarder.forward(self.settings.es_index, flagged)
            alerts = len(flagged)
            # Last: a batch that fails before this line is re-run against the same history.
            self.history.remember(table)
        result = BatchResult(
            batch_id,
            {t: len(v) for t, v in valid.items()},
            len(failed),
            indexed,
            alerts,
            es_retries,
        )
        self.results.append(result)
        return result

    def __call__(self, frame: Any, batch_id: int) -> None:
        # Arrow, not Row objects: about twice as fast to bring a micro-batch to the driver.
        rows = frame.select("topic", "partition", "offset", "key", "value").toArrow()
        self.process(rows.to_pylist(), batch_id)

    def ensure_write_index(self) -> None:
        """Create `<index>-000001` as the write index unless the index or alias exists."""
        bootstrap_write_index(self.es, self.settings.es_index)

    def close(self) -> None:
        self.es.close()
        self.history.close()
        if self.forwarder is not None:
            self.forwarder.close()
        if self._producer is not None:
            self._producer.flush(30)


def start_query(spark: Any, settings: StreamSettings, processor: MicroBatchProcessor) -> Any:
    """Start the streaming query (Kafka source → foreachBatch) and return it."""
    topics = ",".join(f"{settings.topic_prefix}{t}" for t in TOPICS)
    reader = (
        spark.readStream.format("kafka")
        .option("kafka.bootstrap.servers", settings.bootstrap_servers)
        .option("subscribe", topics)
        .option("startingOffsets", settings.starting_offsets)
        .option("maxOffsetsPerTrigger", str(settings.max_offsets_per_trigger))
        # A broker restart must not kill the query: keep asking for offsets for ~2 minutes.
        .option("fetchOffset.numRetries", "60")
        .option("fetchOffset.retryIntervalMs", "2000")
        .option("kafka.reconnect.backoff.max.ms", "2000")
    )
    for key, value in KafkaSecurity.from_env().spark_options().items():
        reader = reader.option(key, value)
    writer = (
        reader.load()
        .writeStream.foreachBatch(processor)
        .option("checkpointLocation", settings.spark_checkpoint)
        .queryName("fraudwatch-stream")
    )
    if settings.available_now:
        writer = writer.trigger(availableNow=True)
    else:
        writer = writer.trigger(processingTime=f"{settings.trigger_seconds} seconds")
    return writer.start()


def run_stream(settings: StreamSettings, spark: Any = None) -> MicroBatchProcessor:
    """Run until stopped (or, with available_now, until the topics are drained)."""
    processor = MicroBatchProcessor(settings)
    ensure_topics(settings.bootstrap_servers, settings.topic_prefix)
    processor.ensure_write_index()
    session = spark or streaming_session(settings.spark_options, s3=settings.checkpoint_on_s3)
    query = start_query(session, settings, processor)
    try:
        query.awaitTermination()
    finally:
        processor.close()
    return processor
