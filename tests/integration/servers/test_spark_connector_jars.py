"""Spark loads its connectors from the cache: Parquet from Ceph through s3a, records from Kafka."""

from __future__ import annotations

import uuid

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pyarrow import fs

from tests.servers import spark_connectors

pytestmark = pytest.mark.spark


def test_connector_versions_follow_pyspark():
    import pyspark

    kafka_coordinate, s3a_coordinate = spark_connectors.coordinates()
    assert kafka_coordinate.endswith(f"_2.13:{pyspark.__version__}")
    assert s3a_coordinate == f"org.apache.hadoop:hadoop-aws:{spark_connectors.hadoop_version()}"


def test_spark_reads_parquet_from_ceph_through_s3a(ceph_s3, spark_with_connectors):
    import boto3

    bucket = f"spark-{uuid.uuid4().hex[:8]}"
    boto3.client(
        "s3",
        endpoint_url=ceph_s3.endpoint,
        aws_access_key_id=ceph_s3.access_key,
        aws_secret_access_key=ceph_s3.secret_key,
        region_name=ceph_s3.region,
    ).create_bucket(Bucket=bucket)
    scheme, _, host = ceph_s3.endpoint.partition("://")
    arrow = fs.S3FileSystem(
        access_key=ceph_s3.access_key,
        secret_key=ceph_s3.secret_key,
        endpoint_override=host,
        scheme=scheme,
        region=ceph_s3.region,
        force_virtual_addressing=False,
    )
    table = pa.table(
        {"user_id": [f"u{i % 5}" for i in range(50)], "amount": [float(i) for i in range(50)]}
    )
    pq.write_table(table, f"{bucket}/raw/part-0.parquet", filesystem=arrow)

    frame = spark_with_connectors.read.parquet(f"s3a://{bucket}/raw/")
    totals = {
        r["user_id"]: r["total"]
        for r in frame.groupBy("user_id")
        .sum("amount")
        .withColumnRenamed("sum(amount)", "total")
        .collect()
    }

    assert frame.count() == 50
    assert totals == {f"u{k}": float(sum(range(k, 50, 5))) for k in range(5)}


def test_spark_writes_parquet_to_ceph_through_s3a(spark_with_connectors, ceph_s3):
    import boto3

    s3 = boto3.client(
        "s3",
        endpoint_url=ceph_s3.endpoint,
        aws_access_key_id=ceph_s3.access_key,
        aws_secret_access_key=ceph_s3.secret_key,
        region_name=ceph_s3.region,
    )
    bucket = f"spark-out-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket)
    spark_with_connectors.range(1000).write.parquet(f"s3a://{bucket}/scored/")

    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]]
    assert "scored/_SUCCESS" in keys
    assert spark_with_connectors.read.parquet(f"s3a://{bucket}/scored/").count() == 1000


def test_spark_reads_a_kafka_topic(kafka_server, spark_with_connectors):
    confluent_kafka = pytest.importorskip("confluent_kafka")
    topic = f"spark-{uuid.uuid4().hex[:8]}"
    producer = confluent_kafka.Producer(
        {"bootstrap.servers": kafka_server.url, "enable.idempotence": True}
    )
    for i in range(30):
        producer.produce(topic, key=f"user-{i % 3}".encode(), value=f"event-{i}".encode())
    assert producer.flush(30) == 0

    rows = (
        spark_with_connectors.read.format("kafka")
        .option("kafka.bootstrap.servers", kafka_server.url)
        .option("subscribe", topic)
        .option("startingOffsets", "earliest")
        .load()
        .selectExpr("CAST(key AS STRING) AS key", "CAST(value AS STRING) AS value")
        .collect()
    )

    assert sorted(r["value"] for r in rows) == sorted(f"event-{i}" for i in range(30))
    assert {r["key"] for r in rows} == {"user-0", "user-1", "user-2"}
