"""The streaming commands. The lead wires them into fraudwatch.cli:
`app.command("stream")(user_errors(stream))` and `app.command("produce")(user_errors(produce))`;
`fraudwatch generate --sink kafka` calls `streaming.produce.generate_to_kafka(config, ...)`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from fraudwatch.contract.events import DEFAULT_TOPIC_PREFIX
from fraudwatch.contract.scored_output import TRANSACTIONS_INDEX
from fraudwatch.locations.home import fraudwatch_home
from fraudwatch.streaming.job import run_stream
from fraudwatch.streaming.produce import DEFAULT_PARTITIONS, produce_raw
from fraudwatch.streaming.stream_settings import StreamSettings
from fraudwatch.streaming.user_history import DEFAULT_PER_USER


def stream(
    models_dir: Annotated[
        Path | None,
        typer.Option(
            envvar="FRAUDWATCH_STREAM_MODELS_DIR",
            help="A fixed model version folder (SCORED/models/<version>) instead of --registry",
        ),
    ] = None,
    registry: Annotated[
        Path | None,
        typer.Option(
            envvar="FRAUDWATCH_MODEL_REGISTRY",
            help="Model registry: each micro-batch scores with its promoted version "
            "(default: $FRAUDWATCH_HOME/models)",
        ),
    ] = None,
    bootstrap_servers: Annotated[
        str, typer.Option(envvar="FRAUDWATCH_KAFKA_BOOTSTRAP", help="Kafka bootstrap servers")
    ] = "127.0.0.1:9092",
    es_url: Annotated[
        str, typer.Option(envvar="FRAUDWATCH_ELASTICSEARCH_URL", help="Elasticsearch URL")
    ] = "http://127.0.0.1:9200",
    es_index: Annotated[str, typer.Option(help="Index or write alias for scored events")] = (
        TRANSACTIONS_INDEX
    ),
    topic_prefix: Annotated[
        str, typer.Option(envvar="FRAUDWATCH_TOPIC_PREFIX", help="Prefix of the event topics")
    ] = DEFAULT_TOPIC_PREFIX,
    checkpoint: Annotated[
        str | None,
        typer.Option(
            envvar="FRAUDWATCH_STREAM_CHECKPOINT",
            help="Checkpoint: a folder or s3://BUCKET/PREFIX "
            "(default: $FRAUDWATCH_HOME/stream-checkpoint)",
        ),
    ] = None,
    state_dir: Annotated[
        Path | None,
        typer.Option(
            envvar="FRAUDWATCH_STREAM_STATE_DIR",
            help="Local folder for the users' history (default: with a local checkpoint)",
        ),
    ] = None,
    threshold: Annotated[
        float | None,
        typer.Option(
            help="Flag and forward events with ensemble_score >= this to intervention "
            "(default: the model version's flag_at, scoring/thresholds.py)"
        ),
    ] = None,
    intervention_url: Annotated[
        str | None,
        typer.Option(
            envvar="FRAUDWATCH_INTERVENTION_URL",
            help="Intervention service base URL; token from FRAUDWATCH_INTERVENTION_TOKEN",
        ),
    ] = None,
    trigger_seconds: Annotated[float, typer.Option(help="Micro-batch interval")] = 5.0,
    available_now: Annotated[
        bool, typer.Option(help="Process what the topics hold now, then stop")
    ] = False,
    max_offsets_per_trigger: Annotated[int, typer.Option(help="Records per micro-batch")] = 100_000,
    history_per_user: Annotated[
        int, typer.Option(help="Recent transactions kept per user for the features")
    ] = DEFAULT_PER_USER,
    es_retry_for: Annotated[
        float, typer.Option(help="Seconds to keep retrying an unreachable Elasticsearch")
    ] = 300.0,
) -> None:
    """Score Kafka events with Spark Structured Streaming; index them in Elasticsearch."""
    if models_dir is None and registry is None:
        from fraudwatch.models.registry import default_root

        registry = default_root()
    settings = StreamSettings(
        bootstrap_servers=bootstrap_servers,
        models_dir=models_dir,
        registry=registry,
        es_url=es_url,
        checkpoint=checkpoint or fraudwatch_home() / "stream-checkpoint",
        state_dir=state_dir,
        topic_prefix=topic_prefix,
        es_index=es_index,
        threshold=threshold,
        intervention_url=intervention_url,
        trigger_seconds=trigger_seconds,
        available_now=available_now,
        max_offsets_per_trigger=max_offsets_per_trigger,
        history_per_user=history_per_user,
        es_retry_for_s=es_retry_for,
    )
    processor = run_stream(settings)
    indexed = sum(r.indexed for r in processor.results)
    dead = sum(r.dead_lettered for r in processor.results)
    typer.echo(f"indexed {indexed} transactions, dead-lettered {dead} records")


def produce(
    input: Annotated[Path, typer.Option(help="Raw directory written by `fraudwatch generate`")],
    bootstrap_servers: Annotated[
        str, typer.Option(envvar="FRAUDWATCH_KAFKA_BOOTSTRAP", help="Kafka bootstrap servers")
    ] = "127.0.0.1:9092",
    topic_prefix: Annotated[str, typer.Option(help="Prefix of the event topics")] = (
        DEFAULT_TOPIC_PREFIX
    ),
    partitions: Annotated[int, typer.Option(help="Partitions of topics it creates")] = (
        DEFAULT_PARTITIONS
    ),
) -> None:
    """Produce a generated data set's transactions, logins and API calls to Kafka."""
    counts = produce_raw(input, bootstrap_servers, topic_prefix, partitions)
    typer.echo(", ".join(f"{n} {topic}" for topic, n in counts.items()) + f" → {topic_prefix}*")
