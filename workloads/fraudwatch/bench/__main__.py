"""`make bench`: throughput and wall-time figures at full scale, with baselines run in the same
process. Prints figures; asserts nothing. Usage: python -m fraudwatch.bench [--users N ...]."""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq


def _median_time(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _run_cli(*args: str) -> tuple[float, float]:
    """Wall seconds and peak RSS (GiB, largest single process) of one `fraudwatch` run."""
    start = time.perf_counter()
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    subprocess.run(
        [sys.executable, "-m", "fraudwatch.cli", *args],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    peak = max(before, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
    return time.perf_counter() - start, peak / 1024 / 1024


def baseline_generate(rows: int, out: Path) -> None:
    """Plain numpy: random columns of the same schema, no personas or scenarios, one file."""
    rng = np.random.default_rng(0)
    chunk = 1_000_000
    writer = None
    for start in range(0, rows, chunk):
        n = min(chunk, rows - start)
        table = pa.table(
            {
                "tx_id": np.arange(start, start + n),
                "user_id": rng.integers(0, rows // 10, n),
                "ts": pa.array(rng.integers(1_767_225_600_000_000, 1_769_817_600_000_000, n)).cast(
                    pa.timestamp("us", tz="UTC")
                ),
                "amount": np.round(rng.lognormal(4, 1, n), 2),
                "tx_type": pa.DictionaryArray.from_arrays(
                    rng.integers(0, 6, n).astype(np.int32),
                    ["payment", "purchase", "transfer", "withdrawal", "deposit", "bill"],
                ),
                "ip": pa.array(rng.integers(0, 2**32, n)).cast(pa.string()),
            }
        )
        writer = writer or pq.ParquetWriter(out, table.schema, compression="zstd")
        writer.write_table(table)
    if writer:
        writer.close()


BASELINE_FEATURES_SQL = """
SELECT user_id, count(*) AS tx_count, avg(amount), max(amount), stddev_samp(amount),
       avg(gap), min(gap), max(gap), count(DISTINCT ip), count(DISTINCT device_id)
FROM (SELECT *, epoch(ts) - lag(epoch(ts)) OVER (PARTITION BY user_id ORDER BY ts, tx_id) AS gap
      FROM read_parquet('{glob}', hive_partitioning = false))
GROUP BY user_id
"""


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--users", type=int, default=1_000_000)
    parser.add_argument("--transactions", type=int, default=10_000_000)
    parser.add_argument(
        "--repeats", type=int, default=3, help="runs per figure (the median is printed)"
    )
    parser.add_argument("--spark", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument(
        "--generator-only",
        action="store_true",
        help="stop after the generator's figures (against its plain numpy baseline)",
    )
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument(
        "--stream",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="streaming figures (needs Kafka at --bootstrap and Elasticsearch at --es-url)",
    )
    parser.add_argument("--bootstrap", default="127.0.0.1:9092")
    parser.add_argument("--es-url", default="http://127.0.0.1:9200")
    args = parser.parse_args(argv)
    work = args.workdir or Path(tempfile.mkdtemp(prefix="fraudwatch-bench-"))
    raw, scored = work / "raw", work / "scored"
    figures: dict[str, Any] = {
        "users": args.users,
        "transactions": args.transactions,
        "repeats": args.repeats,
    }

    def gen():
        return _run_cli(
            "generate",
            "--out",
            str(raw),
            "--users",
            str(args.users),
            "--transactions",
            str(args.transactions),
            "--overwrite",
        )

    # The generator and its baseline take turns, so that a shared machine's load weighs on
    # both alike; the ratio of the medians is the figure (docs/benchmarks.md).
    base = work / "baseline.parquet"
    runs, base_times, load = [], [], [os.getloadavg()[0]]
    for _ in range(args.repeats):
        runs.append(gen())
        base_times.append(_median_time(lambda: baseline_generate(args.transactions, base), 1))
        load.append(os.getloadavg()[0])
    gen_s, base_s = statistics.median(r[0] for r in runs), statistics.median(base_times)
    figures["generate_s"] = round(gen_s, 1)
    figures["generate_tx_per_s"] = round(args.transactions / gen_s)
    figures["generate_peak_rss_gib"] = round(max(r[1] for r in runs), 2)
    figures["baseline_numpy_generate_s"] = round(base_s, 1)
    figures["generate_vs_baseline"] = round(gen_s / base_s, 2)
    figures["generate_runs"] = [
        {"generate_s": round(g[0], 2), "baseline_s": round(b, 2), "ratio": round(g[0] / b, 2)}
        for g, b in zip(runs, base_times, strict=True)
    ]
    figures["generate_load_average"] = [round(x, 1) for x in load]
    if args.generator_only:
        print(json.dumps(figures, indent=2))
        if args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)
        return

    from fraudwatch.features.engine import connect, read_raw
    from fraudwatch.features.transactions import REQUIRED_COLUMNS, transaction_features
    from fraudwatch.features.users import user_features

    def features(engine: str):
        con = connect(engine)
        tx = read_raw(con, raw, "transactions", REQUIRED_COLUMNS)
        return user_features(transaction_features(tx)).to_pyarrow()

    figures["features_duckdb_s"] = round(_median_time(lambda: features("duckdb"), args.repeats), 1)
    glob = str(raw / "transactions" / "**" / "*.parquet")
    db = duckdb.connect()
    db.sql("SET enable_progress_bar = false")
    figures["baseline_duckdb_sql_s"] = round(
        _median_time(
            lambda: db.sql(BASELINE_FEATURES_SQL.format(glob=glob)).to_arrow_table(),
            args.repeats,
        ),
        1,
    )
    figures["features_vs_baseline"] = round(
        figures["features_duckdb_s"] / figures["baseline_duckdb_sql_s"], 2
    )
    if args.spark:
        figures["features_spark_s"] = round(_median_time(lambda: features("spark"), 1), 1)

    from fraudwatch.features.transactions import TRANSACTION_FEATURES
    from fraudwatch.models.bundle import LevelModels, ModelSettings
    from fraudwatch.scoring.batches import feature_matrix

    con = connect("duckdb")
    sample = (
        transaction_features(read_raw(con, raw, "transactions", REQUIRED_COLUMNS))
        .filter(lambda t: t.user_id % 10 == 1)
        .order_by(["user_id", "ts", "tx_id"])
        .to_pyarrow()
    )
    x = feature_matrix(sample, list(TRANSACTION_FEATURES))
    uid = sample["user_id"].to_numpy()
    from fraudwatch.models import MODEL_NAMES

    for name in MODEL_NAMES:
        fitted = LevelModels.fit(
            "transactions",
            list(TRANSACTION_FEATURES),
            x[:200_000],
            [name],
            ModelSettings(),
            uid[:200_000],
        )
        seconds = _median_time(lambda fitted=fitted: fitted.score(x, uid), args.repeats)
        figures[f"score_{name}_rows_per_s"] = round(len(x) / seconds)
    from sklearn.ensemble import IsolationForest

    forest = IsolationForest(n_estimators=100, max_samples=256, random_state=0).fit(x[:200_000])
    figures["baseline_sklearn_iforest_rows_per_s"] = round(
        len(x) / _median_time(lambda: forest.score_samples(np.nan_to_num(x)), args.repeats)
    )
    figures["iforest_vs_baseline"] = round(
        figures["baseline_sklearn_iforest_rows_per_s"] / figures["score_iforest_rows_per_s"], 2
    )

    pipeline_s, peak = _run_cli("score", "--input", str(raw), "--out", str(scored), "--overwrite")
    report_s, _ = _run_cli("report", "--scored", str(scored), "--out", str(work / "report.html"))
    figures["score_pipeline_s"] = round(pipeline_s, 1)
    figures["score_peak_rss_gib"] = round(peak, 2)
    figures["report_s"] = round(report_s, 1)
    figures["whole_pipeline_s"] = round(gen_s + pipeline_s + report_s, 1)
    from fraudwatch.bench.service import bench_service

    figures["intervention_service"] = bench_service(scored)
    from fraudwatch.bench.decisions import DecisionBenchConfig, bench_decisions

    (models_dir,) = (scored / "models").iterdir()
    figures["decisions"] = bench_decisions(
        DecisionBenchConfig(raw, models_dir, repeats=args.repeats)
    )
    if args.stream:
        from fraudwatch.bench.stream import StreamBenchConfig, bench_stream

        figures["streaming"] = bench_stream(
            StreamBenchConfig(args.bootstrap, args.es_url, raw, models_dir, repeats=args.repeats)
        )
    print(json.dumps(figures, indent=2))
    if args.workdir is None:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
