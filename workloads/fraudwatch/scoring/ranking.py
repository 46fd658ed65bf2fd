"""The ranking rule of the scored output, defined once and run where the rows are.

Rows are ranked by ensemble score, highest first, ties broken by their id ascending; rank 1 is
the most anomalous, and the top `flagged_share` of them (at least one) is flagged. The same
rule runs on three executors: numpy for the users (a table in the driver), Ibis for the
transactions on DuckDB (one SQL window), and Spark for the transactions with `--engine spark`
(a range-partitioned sort whose partitions are numbered by their sizes, so that no step pulls
every row into one partition)."""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ibis
import ibis.expr.types as ir
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

SCORE = "ensemble_score"


def flagged_count(flagged_share: float, total: int) -> int:
    """How many of `total` ranked rows are flagged: the top share, at least one."""
    return max(1, math.ceil(flagged_share * total))


@dataclass(frozen=True)
class Ranking:
    """Rank rows by `SCORE` descending, ties by `key` ascending."""

    key: str

    def order(self, scores: np.ndarray, keys: np.ndarray) -> np.ndarray:
        """The row positions in rank order (numpy)."""
        return np.lexsort((keys, -scores))

    def ibis(self, t: ir.Table, flagged: int) -> ir.Table:
        """`rank`, the columns of `t`, `flagged`; sorted by rank (one window over all rows)."""
        position = ibis.row_number().over(order_by=[ibis.desc(t[SCORE]), t[self.key]])
        ranked = t.mutate(rank=(position + 1).cast("int64"))
        return ranked.select(
            "rank", *t.columns, flagged=ranked["rank"] <= ibis.literal(flagged, "int64")
        ).order_by("rank")

    def spark(self, df: Any, flagged: int) -> tuple[Any, Any]:
        """(ranked, cached) for a PySpark DataFrame: `rank`, the columns of `df`, `flagged`,
        partition by partition in rank order (write it without a shuffle to keep that order).
        `cached` is the sorted data kept for the two passes; unpersist it after writing."""
        from pyspark import StorageLevel
        from pyspark.sql import functions as F

        # A global sort range-partitions the rows; each partition's first rank is the number
        # of rows in the partitions before it (one small aggregate), and a row's rank within
        # its partition comes from monotonically_increasing_id (partition index << 33 + row).
        cached = (
            df.orderBy(F.col(SCORE).desc(), F.col(self.key).asc())
            .withColumn("_partition", F.spark_partition_id())
            .withColumn("_position", F.monotonically_increasing_id())
            .persist(StorageLevel.MEMORY_AND_DISK)
        )
        sizes = dict(cached.groupBy("_partition").count().collect())
        starts: list[Any] = []
        before = 0
        for partition in sorted(sizes):
            starts += [F.lit(partition), F.lit(before).cast("long")]
            before += sizes[partition]
        if not starts:
            starts = [F.lit(0), F.lit(0).cast("long")]
        first = F.create_map(*starts)[F.col("_partition")]
        within = F.col("_position") - F.shiftleft(F.col("_partition").cast("long"), 33)
        rank = (first + within + 1).cast("long")
        ranked = cached.select(
            rank.alias("rank"), *[F.col(c) for c in df.columns], (rank <= flagged).alias("flagged")
        )
        return ranked, cached


TRANSACTIONS = Ranking("tx_id")
USERS = Ranking("user_id")


TOP_USERS_COLUMNS = ("rank", "user_id", "persona", "score", "reasons", "scenario")


def top_users(users: pa.Table, n: int) -> pa.Table:
    """The top-n rows of a users ranking (users.parquet, sorted by rank), as printed and written
    to top_users.csv: the score rounded to 4 decimals."""
    top = users.slice(0, max(n, 0))
    score = pc.round(top[SCORE], 4, round_mode="half_towards_infinity")
    columns = [score if c == "score" else top[c] for c in TOP_USERS_COLUMNS]
    return pa.table(columns, names=list(TOP_USERS_COLUMNS))


def write_top_users(top: pa.Table, path: Path) -> None:
    """top_users.csv: a header, comma-separated, quoted only where needed, empty for null."""
    with path.open("w", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(top.column_names)
        for row in top.to_pylist():
            writer.writerow(["" if v is None else v for v in row.values()])
