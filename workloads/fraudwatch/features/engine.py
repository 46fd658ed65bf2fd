"""The two query engines behind the Ibis feature expressions, and reading the raw tables."""

from __future__ import annotations

import os
import re
import socket
import sys
import tempfile
from pathlib import Path

import ibis
import ibis.expr.types as ir
import pyarrow.dataset as ds

from fraudwatch.errors import UserError
from fraudwatch.locations import storage

ENGINES = ("duckdb", "spark")


def check_engine(engine: str) -> str:
    if engine not in ENGINES:
        raise UserError(f"unknown engine {engine!r}; use one of: {', '.join(ENGINES)}")
    return engine


#: Where Spark runs the `--engine spark` jobs: local[N] in this process, spark://HOST:PORT for a
#: standalone cluster (several masters: spark://H1:P1,H2:P2), k8s://https://HOST:PORT, yarn.
MASTER_SETTING = "FRAUDWATCH_SPARK_MASTER"
_MASTER = re.compile(
    r"local(\[(\*|[1-9][0-9]*)(,[0-9]+)?\])?"
    r"|spark://[^:/,\s]+:[0-9]+(,[^:/,\s]+:[0-9]+)*"
    r"|k8s://\S+"
    r"|yarn"
)


def spark_master() -> str:
    """The Spark master from FRAUDWATCH_SPARK_MASTER (default local[*]), checked: a malformed
    value, or a standalone master that nothing answers at, is a one-line error naming it."""
    master = os.environ.get(MASTER_SETTING, "").strip() or "local[*]"
    if not _MASTER.fullmatch(master):
        raise UserError(
            f"{MASTER_SETTING}={master!r} is not a Spark master URL; use local[*] (this process), "
            "spark://HOST:PORT (a standalone cluster), k8s://https://HOST:PORT or yarn"
        )
    if master.startswith("spark://"):
        addresses = [a.rsplit(":", 1) for a in master.removeprefix("spark://").split(",")]
        if not any(_answers(host, int(port)) for host, port in addresses):
            raise UserError(
                f"{MASTER_SETTING}={master}: no Spark master answers there; start the "
                "standalone master (spark-class org.apache.spark.deploy.master.Master) or fix "
                "the setting"
            )
    return master


def _answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=5):
            return True
    except OSError:
        return False


def spark_session():
    """A Spark session in UTC on the master FRAUDWATCH_SPARK_MASTER names (default local[*])."""
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        raise UserError(
            "--engine spark needs PySpark; install it with: pip install 'fraudwatch[spark]'"
        ) from None
    master = spark_master()
    # Python workers must run this interpreter (the one with fraudwatch and its models).
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    builder = (
        SparkSession.builder.appName("fraudwatch")
        .master(master)
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.driver.memory", os.environ.get("FRAUDWATCH_SPARK_DRIVER_MEMORY", "2g"))
        .config("spark.sql.shuffle.partitions", os.environ.get("FRAUDWATCH_SPARK_PARTITIONS", "8"))
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        # Timestamps written as Parquet's microsecond UTC type (what DuckDB and pyarrow
        # write), not Spark's legacy INT96.
        .config("spark.sql.parquet.outputTimestampType", "TIMESTAMP_MICROS")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")  # the CLI shows its own progress
    )
    if os.environ.get("FRAUDWATCH_SPARK_EXECUTOR_MEMORY"):
        builder = builder.config(
            "spark.executor.memory", os.environ["FRAUDWATCH_SPARK_EXECUTOR_MEMORY"]
        )
    if os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL"):
        builder = builder.config("spark.jars.packages", hadoop_aws_package())
        for key, value in storage.s3a_settings().items():
            builder = builder.config(key, value)
    return builder.getOrCreate()


def hadoop_aws_package() -> str:
    """hadoop-aws at the version of the Hadoop client pyspark ships (they must match)."""
    import pyspark

    # pip's pyspark keeps its jars beside the package; under spark-submit pyspark is imported
    # from a zip and the jars are in $SPARK_HOME/jars.
    folders = [Path(pyspark.__file__).parent / "jars"]
    if os.environ.get("SPARK_HOME"):
        folders.append(Path(os.environ["SPARK_HOME"]) / "jars")
    for jars in folders:
        for jar in jars.glob("hadoop-client-api-*.jar"):
            version = jar.name.removeprefix("hadoop-client-api-").removesuffix(".jar")
            return f"org.apache.hadoop:hadoop-aws:{version}"
    raise UserError(f"no Hadoop client jar in {' or '.join(map(str, folders))}; reinstall pyspark")


def configure_duckdb(db) -> None:
    """UTC, and a bounded memory budget (FRAUDWATCH_DUCKDB_MEMORY, default 3GB): DuckDB spills
    sorts and joins to its temporary directory beyond it instead of growing."""
    db.execute("SET TimeZone = 'UTC'")
    db.execute(f"SET memory_limit = '{os.environ.get('FRAUDWATCH_DUCKDB_MEMORY', '3GB')}'")
    db.execute("SET enable_progress_bar = false")
    spill = Path(tempfile.gettempdir()) / "fraudwatch-duckdb"
    db.execute(f"SET temp_directory = '{spill}'")


def connect(engine: str) -> ibis.BaseBackend:
    check_engine(engine)
    if engine == "duckdb":
        con = ibis.duckdb.connect()
        configure_duckdb(con.con)
        return con
    return ibis.pyspark.connect(spark_session())


def read_raw(
    con: ibis.BaseBackend, root: str | Path, table: str, required: dict[str, str]
) -> ir.Table:
    """Read RAW/<table>/ (Parquet, optionally partitioned; local or s3://) and check its columns."""
    location = f"{str(root).rstrip('/')}/{table}"
    if not storage.is_s3(root) and not Path(root).is_dir():
        raise UserError(
            f"--input {root} does not exist; generate data first: fraudwatch generate --out {root}"
        )
    if not storage.list_parquet(location):
        raise UserError(
            f"no Parquet files under {location}; --input must be a directory written by "
            "`fraudwatch generate`"
        )
    if con.name == "duckdb":
        if storage.is_s3(root):
            # DuckDB's own S3 support downloads an extension at run time; pyarrow's works offline.
            dataset = ds.dataset(
                storage.s3_path(location), filesystem=storage.s3_filesystem(), format="parquet"
            )
            name = f"raw_{table}_{abs(hash(location))}"
            con.con.register(name, dataset)
            t = con.table(name)
        else:
            t = con.read_parquet(str(Path(location) / "**" / "*.parquet"), hive_partitioning=False)
    else:
        path = (
            location.replace("s3://", "s3a://", 1)
            if storage.is_s3(root)
            else str(Path(location).absolute())
        )
        t = con.read_parquet(path)
    check_columns(t, required, location)
    return t


def check_columns(t: ir.Table, required: dict[str, str], where: str) -> None:
    schema = t.schema()
    missing = [c for c in required if c not in schema]
    if missing:
        raise UserError(
            f"{where} lacks column(s) {', '.join(missing)}; expected {', '.join(required)}"
        )
    for column, kind in required.items():
        dtype = schema[column]
        ok = {
            "int": dtype.is_integer(),
            "numeric": dtype.is_numeric(),
            "timestamp": dtype.is_timestamp(),
            "string": dtype.is_string(),
        }[kind]
        if not ok:
            raise UserError(f"{where}: column {column} is {dtype}, expected {kind}; fix the input")


def has_table(root: str | Path, table: str) -> bool:
    return bool(storage.list_parquet(f"{str(root).rstrip('/')}/{table}"))


def stream_batches(con: ibis.BaseBackend, expr: ir.Table, rows: int):
    """Arrow record batches of `expr`, streamed (not materialised) where the engine allows."""
    if con.name == "duckdb":
        return con.con.sql(str(con.compile(expr))).to_arrow_reader(rows)
    return expr.to_pyarrow_batches(chunk_size=rows)
