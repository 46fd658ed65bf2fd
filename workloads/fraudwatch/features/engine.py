"""The two query engines behind the Ibis feature expressions, and reading the raw tables."""

from __future__ import annotations

import os
from pathlib import Path

import ibis
import ibis.expr.types as ir

from fraudwatch.errors import UserError

ENGINES = ("duckdb", "spark")


def check_engine(engine: str) -> str:
    if engine not in ENGINES:
        raise UserError(f"unknown engine {engine!r}; use one of: {', '.join(ENGINES)}")
    return engine


def spark_session():
    """A local Spark session in UTC (local[*] unless FRAUDWATCH_SPARK_MASTER says otherwise)."""
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        raise UserError(
            "--engine spark needs PySpark; install it with: pip install 'fraudwatch[spark]'"
        ) from None
    builder = (
        SparkSession.builder.appName("fraudwatch")
        .master(os.environ.get("FRAUDWATCH_SPARK_MASTER", "local[*]"))
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.driver.memory", os.environ.get("FRAUDWATCH_SPARK_DRIVER_MEMORY", "2g"))
        .config("spark.sql.shuffle.partitions", os.environ.get("FRAUDWATCH_SPARK_PARTITIONS", "8"))
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .config("spark.ui.enabled", "false")
    )
    return builder.getOrCreate()


def connect(engine: str) -> ibis.BaseBackend:
    check_engine(engine)
    if engine == "duckdb":
        con = ibis.duckdb.connect()
        con.raw_sql("SET TimeZone = 'UTC'")
        return con
    return ibis.pyspark.connect(spark_session())


def _parquet_files(root: Path, table: str) -> list[Path]:
    folder = root / table
    if not folder.is_dir():
        return []
    return sorted(folder.rglob("*.parquet"))


def read_raw(con: ibis.BaseBackend, root: Path, table: str, required: dict[str, str]) -> ir.Table:
    """Read RAW/<table>/ (Parquet, optionally partitioned) and check its columns."""
    root = Path(root)
    if not root.is_dir():
        raise UserError(
            f"--input {root} does not exist; generate data first: fraudwatch generate --out {root}"
        )
    if not _parquet_files(root, table):
        raise UserError(
            f"no Parquet files under {root / table}; --input must be a directory written by "
            "`fraudwatch generate`"
        )
    if con.name == "duckdb":
        t = con.read_parquet(str(root / table / "**" / "*.parquet"), hive_partitioning=False)
    else:
        t = con.read_parquet(str((root / table).absolute()))
    check_columns(t, required, f"{root / table}")
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


def has_table(root: Path, table: str) -> bool:
    return bool(_parquet_files(Path(root), table))


def stream_batches(con: ibis.BaseBackend, expr: ir.Table, rows: int):
    """Arrow record batches of `expr`, streamed (not materialised) where the engine allows."""
    if con.name == "duckdb":
        return con.con.sql(str(con.compile(expr))).to_arrow_reader(rows)
    return expr.to_pyarrow_batches(chunk_size=rows)
