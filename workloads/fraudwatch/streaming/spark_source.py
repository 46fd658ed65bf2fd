"""Spark's side of `fraudwatch stream`: the session with the Kafka connector and the
streaming query (Kafka source → foreachBatch) that hands each micro-batch to the processor."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from fraudwatch.errors import UserError
from fraudwatch.locations import storage
from fraudwatch.streaming.kafka_security import KafkaSecurity
from fraudwatch.streaming.schemas import TOPICS
from fraudwatch.streaming.stream_settings import StreamSettings

#: The first patch release of a Spark line whose spark-sql-kafka *and* its
#: spark-token-provider-kafka are both on Maven Central (4.0.1-4.0.5 lack the latter).
_KAFKA_CONNECTOR_RELEASE = {"4.0": "4.0.0"}


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


def start_query(spark: Any, settings: StreamSettings, processor: Callable[[Any, int], None]) -> Any:
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
