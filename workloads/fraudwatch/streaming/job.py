"""`fraudwatch stream`: Spark Structured Streaming from Kafka to Elasticsearch and alerts.

Per micro-batch (`foreachBatch`, on the driver; `MicroBatchProcessor`):
1. the records are validated against their topic's schema as vectors
   (`streaming.batch_validation`, the pydantic models of `streaming.schemas` for whatever the
   vectors do not accept); a record that fails goes to the dead-letter topic with the reason,
   the source position and the original bytes (`streaming.dead_letters`): nothing is dropped
   silently;
2. valid transactions are turned into the model's per-transaction features against their
   users' kept history (`streaming.user_history`) and scored with the model version from
   --models-dir or the registry (`streaming.compiled_features.score_transactions`);
3. their documents (`streaming.es_documents`) are bulk-indexed with id
   `<tx_id>:<model_version>` (a replay overwrites, never duplicates), riding out an
   Elasticsearch outage within a retry budget (`streaming.document_sinks`);
4. transactions with ensemble_score >= threshold go to the intervention service's
   Watcher hook (`streaming.alerts`);
5. the batch's transactions join their users' history.
Spark commits the batch's offsets to the checkpoint only after the function returns; a
failure anywhere re-runs the same batch (same offsets) after a restart. See docs/streaming.md.
The settings are `streaming.stream_settings`, the Spark session and query
`streaming.spark_source`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa

from fraudwatch.elasticsearch.bulk import RetryBudget
from fraudwatch.elasticsearch.client import connect
from fraudwatch.elasticsearch.definitions import bootstrap_write_index
from fraudwatch.errors import UserError
from fraudwatch.scoring.thresholds import THRESHOLDS
from fraudwatch.streaming.alerts import AlertForwarder
from fraudwatch.streaming.batch_validation import (
    RAW_TRANSACTION_SCHEMA,
    RECORD_SCHEMA,
    transaction_table,
    validate_batch,
)
from fraudwatch.streaming.compiled_features import score_transactions
from fraudwatch.streaming.dead_letters import DeadLetters
from fraudwatch.streaming.document_sinks import DocumentSink, ElasticsearchSink, NullSink
from fraudwatch.streaming.es_documents import DocumentBuilder
from fraudwatch.streaming.produce import ensure_topics
from fraudwatch.streaming.schemas import DEAD_LETTER
from fraudwatch.streaming.spark_source import (
    kafka_connector_package,
    start_query,
    streaming_session,
)
from fraudwatch.streaming.stream_settings import StreamSettings
from fraudwatch.streaming.user_history import UserHistory

#: Also importable from here: the intervention service's decisions and their bench score
#: through `score_transactions` and build tables with `transaction_table` and the schema;
#: the test servers ask for the Kafka connector's coordinate.
__all__ = [
    "RAW_TRANSACTION_SCHEMA",
    "BatchResult",
    "MicroBatchProcessor",
    "StreamSettings",
    "kafka_connector_package",
    "run_stream",
    "score_transactions",
    "start_query",
    "streaming_session",
    "transaction_table",
]


@dataclass
class BatchResult:
    batch_id: int
    valid: dict[str, int]
    dead_lettered: int
    indexed: int
    alerts: int
    #: Bulk requests re-sent while Elasticsearch was unreachable or busy.
    es_retries: int = 0
    #: Seconds per step (validate, score, documents, index, alerts, history; read: bringing
    #: the batch to the driver), for the bench and for whoever wonders where the time goes.
    seconds: dict[str, float] = field(default_factory=dict)


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
        self.es = None if settings.null_sink else connect(settings.es_url)
        self.sink: DocumentSink = (
            NullSink()
            if self.es is None
            else ElasticsearchSink(
                self.es,
                settings.es_index,
                RetryBudget(retries=None, seconds=settings.es_retry_for_s),
                chunk_size=settings.bulk_chunk,
                concurrency=settings.bulk_concurrency,
            )
        )
        self.history = UserHistory(
            settings.history_path, RAW_TRANSACTION_SCHEMA, settings.history_per_user
        )
        self.forwarder = (
            AlertForwarder(settings.intervention_url) if settings.intervention_url else None
        )
        self.dead_letters = DeadLetters(
            settings.bootstrap_servers, f"{settings.topic_prefix}{DEAD_LETTER}"
        )
        self.documents = DocumentBuilder()
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

    def flag_at(self, version: Any) -> float:
        """The score at which an event is flagged: --threshold, else the version's own."""
        if self.settings.threshold is not None:
            return self.settings.threshold
        return float(version.thresholds.get("flag_at", THRESHOLDS.flag_at))

    def process(self, records: pa.Table, batch_id: int) -> BatchResult:
        """One micro-batch: `records` as Spark's Kafka source gives them (RECORD_SCHEMA)."""
        seconds: dict[str, float] = {}
        clock = time.perf_counter()

        def lap(step: str) -> None:
            nonlocal clock
            now = time.perf_counter()
            seconds[step] = round(now - clock, 4)
            clock = now

        batch = validate_batch(records, self.settings.topic_prefix)
        self.dead_letters.send(batch.failed)
        lap("validate")
        indexed = alerts = es_retries = 0
        table = batch.transactions
        if table.num_rows:
            version = self.current_version()
            scored = score_transactions(version, table, self.history)
            lap("score")
            scored_at = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
            docs = self.documents.build(scored, version.version, self.flag_at(version), scored_at)
            lap("documents")
            report = self.sink.write(docs)
            indexed, es_retries = report.indexed, report.retries
            lap("index")
            alerts = int(docs.flagged.sum())
            if self.forwarder is not None and alerts:
                self.forwarder.forward(self.settings.es_index, docs.flagged_documents())
            lap("alerts")
            # Last: a batch that fails before this line is re-run against the same history.
            self.history.remember(table)
            lap("history")
        result = BatchResult(
            batch_id, batch.valid, len(batch.failed), indexed, alerts, es_retries, seconds
        )
        self.results.append(result)
        return result

    def __call__(self, frame: Any, batch_id: int) -> None:
        # Arrow, not Row objects: about twice as fast to bring a micro-batch to the driver.
        started = time.perf_counter()
        rows = frame.select(*RECORD_SCHEMA.names).toArrow()
        read = time.perf_counter() - started
        self.process(rows, batch_id).seconds["read"] = round(read, 4)

    def ensure_write_index(self) -> None:
        """Create `<index>-000001` as the write index unless the index or alias exists."""
        if self.es is not None:
            bootstrap_write_index(self.es, self.settings.es_index)

    def close(self) -> None:
        self.sink.close()
        if self.es is not None:
            self.es.close()
        self.history.close()
        if self.forwarder is not None:
            self.forwarder.close()
        self.dead_letters.close()


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
