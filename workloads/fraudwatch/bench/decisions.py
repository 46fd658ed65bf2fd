"""Inline decision and micro-batch scoring figures, in process (issue 19): what one decision
costs the scorer (`streaming.job.score_transactions` on one transaction against its user's
kept history, then the history update, as `intervention.decisions.DecisionEngine.score` does)
and what a 20,000-transaction micro-batch costs the stream, with the feature expression
compiled once (`batch_features`) and, as the baseline in the same process, built afresh per
call (`batch_features_uncompiled`). No HTTP, no state store: the scorer's own cost.

A decision is also timed, alternating decision by decision in the same process, as it was
before the few-rows paths of issue 19 (`previous_paths`): scikit-learn's Isolation Forest,
the feature query on the micro-batch connection and the history's batch statements.

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
from collections.abc import Iterator
from contextlib import contextmanager
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


def _percentiles(seconds: list[float], cpu: list[float] | None = None) -> dict[str, float]:
    """Wall-clock percentiles and, with `cpu` (the process's CPU seconds per decision, all
    threads), the CPU median: on a shared machine the wall clock moves with the others' load,
    the CPU time much less."""
    ordered = sorted(seconds)
    figures = {
        "decisions": len(ordered),
        "p50_ms": round(statistics.median(ordered) * 1000, 1),
        "p99_ms": round(ordered[int(0.99 * (len(ordered) - 1))] * 1000, 1),
        "max_ms": round(ordered[-1] * 1000, 1),
    }
    if cpu:
        figures["cpu_p50_ms"] = round(statistics.median(cpu) * 1000, 1)
    return figures


def _history(work: Path, past: pa.Table, label: str, previous: bool = False) -> Any:
    from fraudwatch.streaming.job import RAW_TRANSACTION_SCHEMA
    from fraudwatch.streaming.user_history import UserHistory

    class BatchStatementsHistory(UserHistory):
        """The history read and updated with the batch statements, whatever the rows."""

        def earlier(self, batch: pa.Table) -> pa.Table:
            return self._earlier_rows(batch)

        def remember(self, batch: pa.Table) -> None:
            self._remember_rows(batch)

    kind = BatchStatementsHistory if previous else UserHistory
    history = kind(work / f"{label}-{time.monotonic_ns()}.duckdb", RAW_TRANSACTION_SCHEMA)
    history.remember(past)
    return history


@contextmanager
def previous_paths() -> Iterator[None]:
    """Within: a decision scores as before the few-rows paths (scikit-learn's Isolation
    Forest on every input, the feature query on the micro-batch connection); the history's
    batch statements come with `_history(previous=True)`."""
    from fraudwatch.models import iforest
    from fraudwatch.streaming import compiled_features

    saved = iforest.FLAT_MAX_ROWS, compiled_features.SMALL_INPUT_ROWS
    iforest.FLAT_MAX_ROWS = compiled_features.SMALL_INPUT_ROWS = 0
    try:
        yield
    finally:
        iforest.FLAT_MAX_ROWS, compiled_features.SMALL_INPUT_ROWS = saved


def decision_run(
    version: Any, past: pa.Table, decided: pa.Table, work: Path, compiled: bool
) -> list[float]:
    """Seconds per decision: score one transaction against a history seeded with `past`,
    then add it to the history."""
    from fraudwatch.streaming.job import score_transactions

    history = _history(work, past, f"history-{compiled}")
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


def decision_runs_alternating(
    version: Any, past: pa.Table, decided: pa.Table, work: Path
) -> tuple[list[float], list[float], list[float], list[float]]:
    """Seconds per decision now and as before the few-rows paths (`previous_paths`), each
    transaction decided by both in turn against its own copy of the history, so that a
    change of the machine's load falls on both alike. Returns the wall-clock seconds now and
    before, then the CPU seconds now and before."""
    from fraudwatch.streaming.job import score_transactions

    now, before = _history(work, past, "now"), _history(work, past, "before", previous=True)
    # Warm-up: the first call compiles and prepares; not a decision's cost.
    score_transactions(version, decided.slice(0, 1), now)
    with previous_paths():
        score_transactions(version, decided.slice(0, 1), before)
    seconds: tuple[list[float], list[float], list[float], list[float]] = ([], [], [], [])
    try:
        for row in range(decided.num_rows):
            one = decided.slice(row, 1)
            started, cpu = time.perf_counter(), time.process_time()
            score_transactions(version, one, now)
            now.remember(one)
            seconds[0].append(time.perf_counter() - started)
            seconds[2].append(time.process_time() - cpu)
            with previous_paths():
                started, cpu = time.perf_counter(), time.process_time()
                score_transactions(version, one, before)
                before.remember(one)
                seconds[1].append(time.perf_counter() - started)
                seconds[3].append(time.process_time() - cpu)
    finally:
        now.close()
        before.close()
    return seconds


def batch_run(version: Any, past: pa.Table, batch: pa.Table, work: Path, compiled: bool) -> float:
    """Seconds to score one micro-batch against its users' history (the stream's step 2)."""
    from fraudwatch.streaming.job import score_transactions

    history = _history(work, past, f"batch-{compiled}")
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
    compiled, previous, compiled_cpu, previous_cpu = decision_runs_alternating(
        version, past, decided, work
    )
    baseline = decision_run(
        version, past, decided.slice(0, config.baseline_decisions), work, compiled=False
    )
    figures["decision_compiled"] = _percentiles(compiled, compiled_cpu)
    figures["decision_before_few_rows_paths"] = _percentiles(previous, previous_cpu)
    figures["decision_baseline_built_per_call"] = _percentiles(baseline)
    figures["decision_p50_speedup_over_few_rows_before"] = round(
        statistics.median(previous) / statistics.median(compiled), 2
    )
    figures["decision_p99_speedup_over_few_rows_before"] = round(
        figures["decision_before_few_rows_paths"]["p99_ms"]
        / figures["decision_compiled"]["p99_ms"],
        2,
    )
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
