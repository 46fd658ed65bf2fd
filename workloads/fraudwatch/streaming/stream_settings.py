"""The settings of `fraudwatch stream` (docs/streaming.md): where it reads, scores and writes."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

from fraudwatch.contract.events import DEFAULT_TOPIC_PREFIX
from fraudwatch.contract.scored_output import TRANSACTIONS_INDEX
from fraudwatch.errors import UserError
from fraudwatch.locations import storage
from fraudwatch.locations.home import fraudwatch_home
from fraudwatch.streaming.user_history import DEFAULT_PER_USER, FILE_NAME


@dataclass
class StreamSettings:
    bootstrap_servers: str
    #: A fixed model version folder (SCORED/models/<version>), or None with `registry`.
    models_dir: Path | None
    es_url: str
    #: Spark's checkpoint: a local folder, or s3://BUCKET/PREFIX (Spark writes it through s3a).
    checkpoint: str | Path
    topic_prefix: str = DEFAULT_TOPIC_PREFIX
    es_index: str = TRANSACTIONS_INDEX
    #: Flag (and forward to intervention) at this ensemble score; None: the model version's
    #: own `flag_at` (its manifest's thresholds, from scoring/thresholds.py).
    threshold: float | None = None
    intervention_url: str | None = None
    trigger_seconds: float = 5.0
    available_now: bool = False  # process what is in the topics, then stop
    max_offsets_per_trigger: int = 100_000
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
    #: Documents per bulk request, and bulk requests in flight at once (streaming/document_sinks.py).
    bulk_chunk: int = 10_000
    bulk_concurrency: int = 2
    #: Build the documents but send them nowhere: the scorer's own ceiling (the bench).
    null_sink: bool = False

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
        if self.bulk_chunk < 1 or self.bulk_concurrency < 1:
            raise UserError("the bulk chunk size and concurrency must be at least 1")
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
        return fraudwatch_home() / "stream-state" / digest / FILE_NAME
