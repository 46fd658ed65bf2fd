"""`make bench`: throughput and wall-time figures at full scale, with baselines run in the same
process. Prints figures; asserts nothing. Usage: python -m fraudwatch.bench [--users N ...]."""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from fraudwatch.bench.runs import run_cli


def _median_time(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _run_cli(*args: str, env: dict[str, str] | None = None) -> tuple[float, float]:
    """Wall seconds and peak RSS (GiB, largest single process) of one `fraudwatch` run."""
    measured = run_cli(*args, env=env)
    return measured["seconds"], measured["peak_rss_gib"]


def _children_cpu() -> float:
    """CPU seconds (user + system) of the finished child processes and theirs, so far."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


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
    parser.add_argument(
        "--generator-before",
        type=Path,
        default=None,
        metavar="DIR",
        help="also time the generator from the fraudwatch package under DIR (e.g. the "
        "workloads/ folder of an older commit's `git archive`), in turns with this one",
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

    def gen(code: Path | None = None) -> dict[str, float]:
        """One `fraudwatch generate` run: wall and CPU seconds (workers included), peak RSS;
        with `code`, the fraudwatch package under that directory runs instead of this one."""
        cpu = _children_cpu()
        wall, peak = _run_cli(
            "generate",
            "--out",
            str(raw),
            "--users",
            str(args.users),
            "--transactions",
            str(args.transactions),
            "--overwrite",
            env=None if code is None else {**os.environ, "PYTHONPATH": str(code)},
        )
        return {"s": wall, "cpu_s": _children_cpu() - cpu, "rss": peak}

    def baseline() -> dict[str, float]:
        wall, cpu = time.perf_counter(), time.process_time()
        baseline_generate(args.transactions, work / "baseline.parquet")
        return {"s": time.perf_counter() - wall, "cpu_s": time.process_time() - cpu}

    # The generator, its baseline (and the code before a change, --generator-before) take
    # turns, so that a shared machine's load weighs on each alike; the figures are medians
    # and their ratios (docs/benchmarks.md). CPU seconds are reported beside wall seconds:
    # other work on the machine stretches the wall time, much less the CPU time.
    ways: dict[str, list[dict[str, float]]] = {"generate": [], "baseline": []}
    if args.generator_before:
        ways["before"] = []
    load = [os.getloadavg()[0]]
    for _ in range(args.repeats):
        if args.generator_before:  # first, so that the data left in RAW is this code's
            ways["before"].append(gen(args.generator_before))
        ways["generate"].append(gen())
        ways["baseline"].append(baseline())
        load.append(os.getloadavg()[0])
    median = {
        way: {key: statistics.median(run[key] for run in runs) for key in ("s", "cpu_s")}
        for way, runs in ways.items()
    }
    gen_s, base_s = median["generate"]["s"], median["baseline"]["s"]
    figures["generate_s"] = round(gen_s, 1)
    figures["generate_tx_per_s"] = round(args.transactions / gen_s)
    figures["generate_peak_rss_gib"] = round(max(r["rss"] for r in ways["generate"]), 2)
    figures["baseline_numpy_generate_s"] = round(base_s, 1)
    figures["generate_vs_baseline"] = round(gen_s / base_s, 2)
    figures["generate_cpu_s"] = round(median["generate"]["cpu_s"], 1)
    figures["baseline_numpy_generate_cpu_s"] = round(median["baseline"]["cpu_s"], 1)
    figures["generate_cpu_vs_baseline"] = round(
        median["generate"]["cpu_s"] / median["baseline"]["cpu_s"], 2
    )
    if args.generator_before:
        figures["before_generate_s"] = round(median["before"]["s"], 1)
        figures["before_generate_cpu_s"] = round(median["before"]["cpu_s"], 1)
        figures["before_generate_vs_baseline"] = round(median["before"]["s"] / base_s, 2)
        figures["before_generate_cpu_vs_baseline"] = round(
            median["before"]["cpu_s"] / median["baseline"]["cpu_s"], 2
        )
    figures["generate_runs"] = {
        way: [{key: round(value, 2) for key, value in run.items()} for run in runs]
        for way, runs in ways.items()
    }
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
