"""Streaming figures for `make bench`: throughput of `fraudwatch stream` on a backlog, and the
end-to-end latency (produced to Kafka → searchable in Elasticsearch) at a steady load.

Needs a Kafka broker and an Elasticsearch node (`make bench` starts the development ones with
`python -m tests.servers up kafka elasticsearch`), a raw data set and a transaction model
version. Every run uses its own topic prefix, index and checkpoint, so runs never see each
other's data. Prints figures; asserts nothing.

    python -m fraudwatch.bench.stream --raw RAW --models-dir SCORED/models/<version>
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq


@dataclass(frozen=True)
class StreamBenchConfig:
    bootstrap: str
    es_url: str
    raw: Path
    models_dir: Path
    backlog: int = 200_000  # transactions drained per throughput run
    rate: int = 500  # transactions per second during the latency run
    seconds: int = 60  # length of the latency run
    repeats: int = 3
    max_offsets_per_trigger: int = 20_000
    trigger_seconds: float = 1.0


def _transactions(raw: Path, limit: int) -> pa.Table:
    """The first `limit` transactions of the raw set in event-time order."""
    from fraudwatch.streaming.job import RAW_TRANSACTION_SCHEMA

    # Only the event's own fields: not the `date` a partitioned folder adds.
    table = pq.read_table(raw / "transactions", columns=RAW_TRANSACTION_SCHEMA.names)
    table = table.sort_by([("ts", "ascending"), ("tx_id", "ascending")])
    return table.slice(0, min(limit, table.num_rows))


def _names() -> tuple[str, str]:
    tag = uuid.uuid4().hex[:8]
    return f"bench{tag}.", f"bench-stream-{tag}"


def _settings(config: StreamBenchConfig, prefix: str, index: str, work: Path, **kw: Any) -> Any:
    from fraudwatch.streaming.job import StreamSettings

    return StreamSettings(
        bootstrap_servers=config.bootstrap,
        models_dir=config.models_dir,
        es_url=config.es_url,
        checkpoint=work / f"checkpoint-{index}",
        topic_prefix=prefix,
        es_index=index,
        max_offsets_per_trigger=config.max_offsets_per_trigger,
        trigger_seconds=config.trigger_seconds,
        **kw,
    )


def _delete_index(es_url: str, index: str) -> None:
    import httpx

    httpx.delete(f"{es_url}/{index}-*", timeout=60)


def throughput_run(config: StreamBenchConfig, spark: Any, table: pa.Table, work: Path) -> float:
    """Produce `table` as a backlog, then time the stream draining it (available-now)."""
    from fraudwatch.streaming.job import run_stream
    from fraudwatch.streaming.produce import EventProducer, ensure_topics, records

    prefix, index = _names()
    ensure_topics(config.bootstrap, prefix)
    producer = EventProducer(config.bootstrap)
    producer.send(f"{prefix}transactions", records("transactions", table))
    producer.flush()
    settings = _settings(config, prefix, index, work, available_now=True)
    started = time.perf_counter()
    processor = run_stream(settings, spark)
    seconds = time.perf_counter() - started
    indexed = sum(r.indexed for r in processor.results)
    dead = sum(r.dead_lettered for r in processor.results)
    _delete_index(config.es_url, index)
    if indexed != table.num_rows:
        raise RuntimeError(
            f"throughput run indexed {indexed} of {table.num_rows} transactions "
            f"({dead} dead-lettered: see the {prefix}dead-letter topic)"
        )
    return table.num_rows / seconds


class _SearchablePoller(threading.Thread):
    """Asks Elasticsearch every 200 ms which outstanding documents are searchable; records
    the first time each one is."""

    def __init__(self, es_url: str, index: str) -> None:
        super().__init__(daemon=True)
        import httpx

        self._http = httpx.Client(base_url=es_url, timeout=30)
        self.index = index
        self.outstanding: dict[str, float] = {}  # doc id -> produced at
        self.latencies: list[float] = []
        self.lock = threading.Lock()
        self.stop = threading.Event()

    def expect(self, doc_id: str, produced_at: float) -> None:
        with self.lock:
            self.outstanding[doc_id] = produced_at

    def run(self) -> None:
        while not self.stop.is_set():
            with self.lock:
                wanted = list(self.outstanding)[:10_000]
            if wanted:
                response = self._http.post(
                    f"/{self.index}/_search",
                    json={
                        "size": len(wanted),
                        "_source": False,
                        "query": {"ids": {"values": wanted}},
                    },
                )
                now = time.perf_counter()
                if response.status_code == 200:
                    with self.lock:
                        for hit in response.json()["hits"]["hits"]:
                            produced = self.outstanding.pop(hit["_id"], None)
                            if produced is not None:
                                self.latencies.append(now - produced)
            self.stop.wait(0.2)
        self._http.close()


def latency_run(config: StreamBenchConfig, spark: Any, table: pa.Table, work: Path) -> dict:
    """Produce `rate` transactions/s for `seconds` s into a running stream; latency from each
    produce call to the first search that finds the document."""
    from confluent_kafka import Producer

    from fraudwatch.streaming.job import MicroBatchProcessor, start_query
    from fraudwatch.streaming.produce import ensure_topics, producer_config, records

    prefix, index = _names()
    ensure_topics(config.bootstrap, prefix)
    settings = _settings(config, prefix, index, work)
    processor = MicroBatchProcessor(settings)
    processor.ensure_write_index()
    query = start_query(spark, settings, processor)
    poller = _SearchablePoller(config.es_url, index)
    poller.start()
    producer = Producer(producer_config(config.bootstrap))
    version = processor.version.version
    wanted = min(table.num_rows, config.rate * config.seconds)
    try:
        time.sleep(5)  # the query's first (empty) trigger
        started = time.perf_counter()
        for n, (key, value) in enumerate(records("transactions", table.slice(0, wanted))):
            due = started + n / config.rate
            while (pause := due - time.perf_counter()) > 0:
                producer.poll(min(pause, 0.05))
            producer.produce(f"{prefix}transactions", key=key, value=value)
            tx_id = json.loads(value)["event"]["tx_id"]
            poller.expect(f"{tx_id}:{version}", time.perf_counter())
            producer.poll(0)
        producer.flush(60)
        produce_s = time.perf_counter() - started
        deadline = time.monotonic() + 120
        while poller.outstanding and time.monotonic() < deadline:
            time.sleep(0.5)
    finally:
        poller.stop.set()
        poller.join()
        query.stop()
        processor.close()
        _delete_index(config.es_url, index)
    latencies = sorted(poller.latencies)
    if not latencies:
        raise RuntimeError("no produced transaction became searchable")
    return {
        "load_tx_per_s": config.rate,
        "achieved_tx_per_s": round(wanted / produce_s),
        "transactions": wanted,
        "searchable": len(latencies),
        "p50_s": round(statistics.median(latencies), 2),
        "p99_s": round(latencies[int(0.99 * (len(latencies) - 1))], 2),
        "max_s": round(latencies[-1], 2),
    }


def bench_stream(config: StreamBenchConfig) -> dict:
    """Median throughput over `repeats` backlog runs, then one latency run at `rate`."""
    from fraudwatch.streaming.job import streaming_session

    work = Path(tempfile.mkdtemp(prefix="fraudwatch-stream-bench-"))
    table = _transactions(config.raw, max(config.backlog, config.rate * config.seconds))
    spark = streaming_session()
    try:
        backlog = table.slice(0, config.backlog)
        runs = [throughput_run(config, spark, backlog, work) for _ in range(config.repeats)]
        return {
            "backlog_transactions": backlog.num_rows,
            "max_offsets_per_trigger": config.max_offsets_per_trigger,
            "throughput_tx_per_s": round(statistics.median(runs)),
            "throughput_runs_tx_per_s": [round(r) for r in runs],
            "latency": latency_run(config, spark, table, work),
        }
    finally:
        spark.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--raw", type=Path, required=True)
    parser.add_argument("--models-dir", type=Path, required=True)
    parser.add_argument("--bootstrap", default="127.0.0.1:9092")
    parser.add_argument("--es-url", default="http://127.0.0.1:9200")
    parser.add_argument("--backlog", type=int, default=StreamBenchConfig.backlog)
    parser.add_argument("--rate", type=int, default=StreamBenchConfig.rate)
    parser.add_argument("--seconds", type=int, default=StreamBenchConfig.seconds)
    parser.add_argument("--repeats", type=int, default=StreamBenchConfig.repeats)
    args = parser.parse_args(argv)
    config = StreamBenchConfig(
        bootstrap=args.bootstrap,
        es_url=args.es_url,
        raw=args.raw,
        models_dir=args.models_dir,
        backlog=args.backlog,
        rate=args.rate,
        seconds=args.seconds,
        repeats=args.repeats,
    )
    print(json.dumps(bench_stream(config), indent=2))


if __name__ == "__main__":
    main()
