"""The generation run: chunks of users in parallel workers, one Parquet file per table and date.

Workers return chunks in user order and the parent appends them, so the files hold the same
rows in the same order whatever the number of workers or the chunk size.
"""

from __future__ import annotations

import itertools
import json
import multiprocessing
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from fraudwatch.contract import events as raw_events
from fraudwatch.contract.regulatory import reporting_thresholds
from fraudwatch.generator import events
from fraudwatch.generator.population import GeneratorConfig, Population, build_population
from fraudwatch.generator.randomness import fold
from fraudwatch.generator.scenarios import SCENARIOS
from fraudwatch.locations.atomic import output_location

TABLES = ("transactions", "logins", "api_calls")
_population: Population | None = None  # set in the parent before workers fork


@dataclass
class GenerationSummary:
    out: str | Path
    counts: dict[str, int]
    fingerprint: str
    fraud_transactions: int


def table_fingerprint(table: pa.Table) -> int:
    """Order-independent 64-bit digest of a table's rows: the sum of per-row hashes of every
    column (numbers and times by value, categories by code, free text by length)."""
    row = np.zeros(table.num_rows, dtype=np.uint64)
    for i, column in enumerate(table.combine_chunks().columns):
        array = column.chunks[0] if column.num_chunks else pa.array([], column.type)
        if pa.types.is_dictionary(array.type):
            values = array.indices.fill_null(-1).to_numpy()
        elif pa.types.is_string(array.type):
            values = pc.utf8_length(array.fill_null("")).to_numpy()
        elif pa.types.is_timestamp(array.type):
            values = array.cast(pa.int64()).to_numpy()
        else:
            values = array.to_numpy(zero_copy_only=False).astype(np.float64).view(np.int64)
        fold(row, 0, f"column/{i}", values.astype(np.int64, copy=False))
    with np.errstate(over="ignore"):
        return int(row.sum(dtype=np.uint64))


@dataclass
class _ChunkResult:
    users: int
    counts: dict[str, int]
    fingerprint: int


_SCHEMAS = {
    "transactions": raw_events.TRANSACTION_SCHEMA,
    "logins": raw_events.LOGIN_SCHEMA,
    "api_calls": raw_events.API_CALL_SCHEMA,
}
_BUILDERS = {
    "transactions": events.transactions,
    "logins": events.logins,
    "api_calls": events.api_calls,
}


def _write_partitioned(table: pa.Table, root: Path, part: str) -> None:
    """Write ROOT/date=YYYY-MM-DD/PART for each date present in the table, whose rows come
    sorted by date (the builders' by_day order): each date is a slice, nothing is copied."""
    if table.num_rows == 0:
        return
    day = table["ts"].cast(pa.int64()).to_numpy() // events.US_PER_DAY
    starts = np.concatenate([[0], np.flatnonzero(np.diff(day)) + 1, [len(day)]])
    for lo, hi in itertools.pairwise(starts):
        folder = root / f"date={np.datetime64(int(day[lo]), 'D')}"
        folder.mkdir(parents=True, exist_ok=True)
        pq.write_table(table.slice(lo, hi - lo), folder / part, **_parquet_options(table))


_STATISTICS = ("tx_id", "event_id", "user_id", "ts")


def _parquet_options(table: pa.Table) -> dict[str, Any]:
    """zstd; dictionary pages only where values repeat: the category columns (already
    dictionary arrays) and the label. Ids, times, amounts, IPs, devices and counterparties are
    nearly unique within a file, where a dictionary costs time and space (a third of the write
    time, and the files come out smaller without it). Min/max statistics for the ids and the
    time, what a reader prunes files by (a user's rows, a time range); for the other columns
    they cost a sixth of the write time and serve no filter."""
    repeated = [
        field.name
        for field in table.schema
        if pa.types.is_dictionary(field.type) or field.name == "label"
    ]
    pruned_by = [name for name in table.column_names if name in _STATISTICS]
    return {"compression": "zstd", "use_dictionary": repeated, "write_statistics": pruned_by}


def _write_chunk(job: tuple[Path, int, int]) -> _ChunkResult:
    """Generate users first..last-1 and write their rows (runs in a worker)."""
    out, first, last = job
    assert _population is not None
    part = f"part-{first:09d}.parquet"
    (out / "users").mkdir(exist_ok=True)
    users = events.users(_population, first, last)
    pq.write_table(users, out / "users" / part, **_parquet_options(users))
    counts, fingerprint = {}, 0
    for name, build in _BUILDERS.items():
        table = build(_population, first, last, by_day=True)
        counts[name] = table.num_rows
        if name == "transactions":
            fingerprint = table_fingerprint(table)
        _write_partitioned(table, out / name, part)
    return _ChunkResult(last - first, counts, fingerprint)


def generate(
    config: GeneratorConfig,
    out: str | Path,
    workers: int = 1,
    chunk_users: int = 50_000,
    overwrite: bool = False,
    on_progress: Callable[[int], None] | None = None,
) -> GenerationSummary:
    """Generate the data set described by `config` into the directory `out`.

    Chunks are written as separate files (part-<first user index>.parquet), so the number of
    files depends on the chunk size but the rows, read back in file-name order, do not."""
    global _population
    thresholds = reporting_thresholds()  # a bad configuration fails here, before any work
    _population = build_population(config)
    counts = dict.fromkeys(("users", *TABLES), 0)
    digest = 0
    try:
        with output_location(out, overwrite) as tmp:
            jobs = [
                (tmp, a, min(a + chunk_users, config.users))
                for a in range(0, config.users, chunk_users)
            ]
            pool = multiprocessing.get_context("fork").Pool(workers) if workers > 1 else None
            try:
                results = (
                    pool.imap_unordered(_write_chunk, jobs) if pool else map(_write_chunk, jobs)
                )
                for result in results:
                    counts["users"] += result.users
                    for name, n in result.counts.items():
                        counts[name] += n
                    digest = (digest + result.fingerprint) % (1 << 64)
                    if on_progress:
                        on_progress(result.users)
            finally:
                if pool:
                    pool.terminate()
            fraud = int(_population.fraud_tx.sum())
            manifest: dict[str, Any] = {
                "generator": "fraudwatch",
                "config": config.as_json(),
                "counts": counts,
                "fraud_transactions": fraud,
                # Every scenario the data was generated with, victims or not: the evaluation
                # lists each of them (a scenario nobody caught is not silently dropped).
                "scenarios": [
                    s.name for s in SCENARIOS if config.scenario_weights.get(s.name, 0.0) > 0
                ],
                # Structuring is simulated against these (fraudwatch.contract.regulatory).
                "reporting_thresholds": thresholds,
                "fingerprint": f"{digest:016x}",
            }
            (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    finally:
        _population = None
    return GenerationSummary(out, counts, manifest["fingerprint"], fraud)
