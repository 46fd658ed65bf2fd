"""Inline decision and micro-batch scoring figures, in process (issue 19): what one decision
costs the scorer (`streaming.job.score_transactions` on one transaction against its user's
kept history, then the history update, as `intervention.decisions.DecisionEngine.score` does)
and what a 20,000-transaction micro-batch costs the stream, with the feature expression
compiled once (`batch_features`) and, as the baseline in the same process, built afresh per
call (`batch_features_uncompiled`). No HTTP, no state store: the scorer's own cost.

Needs a raw data set and a transaction model version. Prints figures; asserts nothing.

    python -m fraudwatch.bench.decisions --raw RAW --models-dir SCORED/models/<version>
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq


@dataclass(frozen=True)
class DecisionBenchConfig:
    raw: Path
    models_dir: Path
    decisions: int = 300  # transactions decided one at a time (compiled path)
    baseline_decisions: int = 20  # ... with the expression built per call
    batch_rows: int = 20_000  # transactions per micro-batch
    repeats: int = 3  # micro-batch runs per figure (the median is printed)
    window: int = 200_000  # only the set's last transactions are read (history + decided)


def _transactions(raw: Path, window: int) -> pa.Table:
    """The set's last `window` transactions in event-time order."""
    from fraudwatch.streaming.job import RAW_TRANSACTION_SCHEMA

    table = pq.read_table(raw / "transactions", columns=RAW_TRANSACTION_SCHEMA.names)
    table = table.cast(RAW_TRANSACTION_SCHEMA).sort_by(
        [("ts", "ascending"), ("tx_id", "ascending")]
    )
    return table.slice(max(table.num_rows - window, 0))


def _percentiles(seconds: list[float]) -> dict[str, float]:
    ordered = sorted(seconds)
    return {
        "decisions": len(ordered),
        "p50_ms": round(statistics.median(ordered) * 1000, 1),
        "p99_ms": round(ordered[int(0.99 * (len(ordered) - 1))] * 1000, 1),
        "max_ms": round(ordered[-1] * 1000, 1),
    }


def decision_run(
    version: Any, past: pa.Table, decided: pa.Table, work: Path, compiled: bool
) -> list[float]:
    """Seconds per decision: score one transaction against a history seeded with `past`,
    then add it to the history."""
    from fraudwatch.streaming.job import RAW_TRANSACTION_SCHEMA, score_transactions
    from fraudwatch.streaming.user_history import UserHistory

    history = UserHistory(
        work / f"history-{compiled}-{time.monotonic_ns()}.duckdb", RAW_TRANSACTION_SCHEMA
    )
    history.remember(past)
    # The first call compiles (or, for the baseline, warms the imports): not a decision's cost.
    score_transactions(version, decided.slice(0, 1), history, compiled=compiled)
    seconds = []
    try:
        for row in range(decided.num_rows):
            one = decided.slice(row, 1)
            started = time.perf_counter()
            score_transactions(version, one, history, compiled=compiled)
            history.remember(one)
            seconds.append(time.perf_counter() - started)
    finally:
        history.close()
    return seconds


def batch_run(version: Any, past: pa.Table, batch: pa.Table, work: Path, compiled: bool) -> float:
    """Seconds to score one micro-batch against its users' history (the stream's step 2)."""
    from fraudwatch.streaming.job import RAW_TRANSACTION_SCHEMA, score_transactions
    from fraudwatch.streaming.user_history import UserHistory

    history = UserHistory(
        work / f"batch-{compiled}-{time.monotonic_ns()}.duckdb", RAW_TRANSACTION_SCHEMA
    )
    history.remember(past)
    try:
        started = time.perf_counter()
        score_transactions(version, batch, history, compiled=compiled)
        return time.perf_counter() - started
    finally:
        history.close()


def bench_decisions(config: DecisionBenchConfig) -> dict:
    from fraudwatch.models.bundle import ModelVersion

    version = ModelVersion.load(config.models_dir)
    table = _transactions(config.raw, config.window)
    work = Path(tempfile.mkdtemp(prefix="fraudwatch-decision-bench-"))
    # Decisions: the set's last transactions, each user's earlier ones in the history.
    decided = table.slice(max(table.num_rows - config.decisions, 0))
    past = table.slice(0, table.num_rows - decided.num_rows)
    figures: dict[str, Any] = {"load_average_1m": round(os.getloadavg()[0], 2)}
    compiled = decision_run(version, past, decided, work, compiled=True)
    baseline = decision_run(
        version, past, decided.slice(0, config.baseline_decisions), work, compiled=False
    )
    figures["decision_compiled"] = _percentiles(compiled)
    figures["decision_baseline_built_per_call"] = _percentiles(baseline)
    figures["decision_p50_speedup"] = round(
        statistics.median(baseline) / statistics.median(compiled), 1
    )
    # Micro-batches: the last batch_rows transactions, the ones before as history.
    batch = table.slice(max(table.num_rows - config.batch_rows, 0))
    before = table.slice(0, table.num_rows - batch.num_rows)
    # Alternating, so that a change of the machine's load falls on both alike; the first
    # pair compiles and warms up.
    runs: dict[bool, list[float]] = {True: [], False: []}
    for _ in range(config.repeats + 1):
        for flag in (True, False):
            runs[flag].append(batch_run(version, before, batch, work, flag))
    for name, flag in (("batch_compiled", True), ("batch_baseline_built_per_call", False)):
        seconds = statistics.median(runs[flag][1:])
        figures[name] = {
            "rows": batch.num_rows,
            "history_rows": before.num_rows,
            "median_s": round(seconds, 3),
            "runs_s": [round(r, 3) for r in runs[flag][1:]],
            "tx_per_s": round(batch.num_rows / seconds),
        }
    figures["batch_speedup"] = round(
        figures["batch_compiled"]["tx_per_s"]
        / figures["batch_baseline_built_per_call"]["tx_per_s"],
        2,
    )
    figures["load_average_1m_after"] = round(os.getloadavg()[0], 2)
    return figures


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--raw", type=Path, required=True)
    parser.add_argument("--models-dir", type=Path, required=True)
    parser.add_argument("--decisions", type=int, default=DecisionBenchConfig.decisions)
    parser.add_argument(
        "--baseline-decisions", type=int, default=DecisionBenchConfig.baseline_decisions
    )
    parser.add_argument("--batch-rows", type=int, default=DecisionBenchConfig.batch_rows)
    parser.add_argument("--repeats", type=int, default=DecisionBenchConfig.repeats)
    parser.add_argument("--window", type=int, default=DecisionBenchConfig.window)
    args = parser.parse_args(argv)
    config = DecisionBenchConfig(
        raw=args.raw,
        models_dir=args.models_dir,
        decisions=args.decisions,
        baseline_decisions=args.baseline_decisions,
        batch_rows=args.batch_rows,
        repeats=args.repeats,
        window=args.window,
    )
    print(json.dumps(bench_decisions(config), indent=2))


if __name__ == "__main__":
    main()
