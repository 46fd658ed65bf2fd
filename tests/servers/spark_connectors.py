"""The Spark connectors the cluster setup needs, resolved from Maven Central into the cache.

Coordinates follow the installed pyspark: `spark-sql-kafka-0-10_2.13` at Spark's own version
and `hadoop-aws` at the version of the Hadoop client jars pyspark ships (its AWS SDK v2 bundle
comes along). Spark's Ivy resolver (`spark.jars.packages`) fetches them into
`<cache>/spark-ivy`, once; later sessions resolve from there without the network.

No elasticsearch-spark artifact for Spark 4 / Scala 2.13 is published on Maven Central (the
newest is `elasticsearch-spark-30_2.13:9.3.2`, built for Spark 3.x), so writes to
Elasticsearch go through elasticsearch-py inside `foreachBatch`; see
docs/operations/dev-services.md.
"""

from __future__ import annotations

from pathlib import Path

from tests.servers import cache_dir

NAME = "spark_connectors"


def hadoop_version() -> str:
    """The Hadoop client version bundled with the installed pyspark (hadoop-aws must match it)."""
    from fraudwatch.features.engine import hadoop_aws_package

    return hadoop_aws_package().rsplit(":", 1)[1]


def coordinates() -> list[str]:
    """Maven coordinates of the connectors for the installed pyspark — the ones the product's
    own Spark sessions ask for (streaming job and s3a)."""
    from fraudwatch.features.engine import hadoop_aws_package
    from fraudwatch.streaming.job import kafka_connector_package

    return [kafka_connector_package(), hadoop_aws_package()]


def ivy_dir() -> Path:
    return cache_dir() / "spark-ivy"


def session_config() -> dict[str, str]:
    """SparkSession settings that load the connectors (resolved into the cache on first use)."""
    return {
        "spark.jars.packages": ",".join(coordinates()),
        "spark.jars.ivy": str(ivy_dir()),
    }


def s3a_config(endpoint: str, access_key: str, secret_key: str) -> dict[str, str]:
    """SparkSession settings for s3a:// against a path-style S3 endpoint such as Ceph radosgw."""
    return {
        "spark.hadoop.fs.s3a.endpoint": endpoint,
        "spark.hadoop.fs.s3a.endpoint.region": "us-east-1",
        "spark.hadoop.fs.s3a.path.style.access": "true",
        "spark.hadoop.fs.s3a.connection.ssl.enabled": str(endpoint.startswith("https")).lower(),
        "spark.hadoop.fs.s3a.aws.credentials.provider": (
            "org.apache.hadoop.fs.s3a.SimpleAWSCredentialsProvider"
        ),
        "spark.hadoop.fs.s3a.access.key": access_key,
        "spark.hadoop.fs.s3a.secret.key": secret_key,
        # The AWS SDK v2 signs plain-HTTP uploads as aws-chunked streams; radosgw 16 rejects the
        # empty ones s3a writes for directory markers (XAmzContentSHA256Mismatch). An unsigned
        # payload keeps the request signature and works on both HTTP and HTTPS endpoints.
        "spark.hadoop.fs.s3a.signing-algorithm": "AWS4UnsignedPayloadSignerType",
    }


def fetch() -> Path:
    """Resolve the connectors now (a throwaway local session), so tests start offline-ready."""
    from pyspark.sql import SparkSession

    builder = SparkSession.builder.master("local[1]").appName("fraudwatch-fetch-connectors")
    builder = builder.config("spark.driver.memory", "512m").config("spark.ui.enabled", "false")
    for key, value in session_config().items():
        builder = builder.config(key, value)
    session = builder.getOrCreate()
    try:
        jars = session.sparkContext.getConf().get("spark.jars", "")
    finally:
        session.stop()
    missing = [c for c in coordinates() if c.split(":")[1] not in jars]
    if missing:
        raise RuntimeError(f"Spark did not load {', '.join(missing)}; see the Ivy output above")
    return ivy_dir()
