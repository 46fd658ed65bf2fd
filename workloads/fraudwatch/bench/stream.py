"""Streaming figures for `make bench`: throughput of `fraudwatch stream` on a backlog, and the
end-to-end latency (produced to Kafka → searchable in Elasticsearch) at a steady load.

Throughput is measured four ways on the same backlog, in the same run, so that the ratios hold
whatever else loads the machine (every repeat runs each way in turn):
* **source**: Spark's Kafka source alone, each micro-batch brought to the driver as Arrow and
  dropped: the ceiling of the stream before any of our work;
* **null sink**: the whole stream (validation, features with the users' history, every model
  and the ensemble, the documents) but the documents sent nowhere: the scorer's own ceiling;
* **Elasticsearch**: the whole stream into an index with the fraudwatch-transactions
  template's mappings (strict, keyword fields) on the node on this machine;
* **Elasticsearch alone**: the same documents, built beforehand, bulk-indexed by the stream's
  sink with nothing else running: the node's own ceiling on this machine.

Needs a Kafka broker and an Elasticsearch node (`make bench` starts the development ones with
`python -m tests.servers up kafka elasticsearch`), a raw data set and a transaction model
version. Every run uses its own topic prefix, index and checkpoint, so runs never see each
other's data. The load average is printed with every figure. Prints figures; asserts nothing.

    python -m fraudwatch.bench.stream --raw RAW --models-dir SCORED/models/<version>
"""

from __future__ import annotations

import argparse
import json
import os
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

from fraudwatch.contract.scored_output import TRANSACTIONS_INDEX


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
    max_offsets_per_trigger: int = 100_000
    trigger_seconds: float = 1.0
    bulk_chunk: int = 10_000
    bulk_concurrency: int = 2
    #: The index template whose settings and mappings the bench's indices get (found from the
    #: working directory up when None; dynamic mappings if there is none).
    template: Path | None = None


TEMPLATE = Path(f"dashboards/elasticsearch/index-templates/{TRANSACTIONS_INDEX}.json")


def _load() -> list[float]:
    return [round(x, 1) for x in os.getloadavg()]


def _steps(results: list[Any], how: Any = sum) -> dict[str, float]:
    """Seconds per step of the micro-batches (`BatchResult.seconds`), summed or otherwise."""
    names = sorted({name for r in results for name in r.seconds})
    return {n: round(how([r.seconds.get(n, 0.0) for r in results]), 3) for n in names}


def _transactions(raw: Path, limit: int) -> pa.Table:
    """The first `limit` transactions of the raw set in event-time order."""
    from fraudwatch.streaming.batch_validation import RAW_TRANSACTION_SCHEMA

    # Only the event's own fields: not the `date` a partitioned folder adds.
    table = pq.read_table(raw / "transactions", columns=RAW_TRANSACTION_SCHEMA.names)
    table = table.sort_by([("ts", "ascending"), ("tx_id", "ascending")])
    return table.slice(0, min(limit, table.num_rows))


def _names() -> tuple[str, str]:
    tag = uuid.uuid4().hex[:8]
    return f"bench{tag}.", f"bench-stream-{tag}"


def _settings(config: StreamBenchConfig, prefix: str, index: str, work: Path, **kw: Any) -> Any:
    from fraudwatch.streaming.stream_settings import StreamSettings

    return StreamSettings(
        bootstrap_servers=config.bootstrap,
        models_dir=config.models_dir,
        es_url=config.es_url,
        checkpoint=work / f"checkpoint-{index}",
        topic_prefix=prefix,
        es_index=index,
        max_offsets_per_trigger=config.max_offsets_per_trigger,
        trigger_seconds=config.trigger_seconds,
        bulk_chunk=config.bulk_chunk,
        bulk_concurrency=config.bulk_concurrency,
        **kw,
    )


def _template_path(config: StreamBenchConfig) -> Path | None:
    if config.template is not None:
        return config.template
    here = Path.cwd().resolve()
    for folder in (here, *here.parents):
        if (folder / TEMPLATE).is_file():
            return folder / TEMPLATE
    return None


def install_template(config: StreamBenchConfig, index: str) -> None:
    """The fraudwatch-transactions template's settings and mappings for `<index>-*`, on one node:
    no replica, no lifecycle (the OSS node has no ILM), and a 1 s refresh (the template's 5 s
    would be most of the produced → searchable latency the issue bounds at 2 s)."""
    import httpx

    path = _template_path(config)
    if path is None:
        return
    template = json.loads(path.read_text(encoding="utf-8"))["template"]
    settings = dict(template.get("settings", {}).get("index", {}))
    settings.pop("lifecycle", None)
    settings.update(number_of_replicas=0, refresh_interval="1s")
    body = {
        "index_patterns": [f"{index}-*"],
        "priority": 500,
        "template": {"settings": {"index": settings}, "mappings": template["mappings"]},
    }
    httpx.put(f"{config.es_url}/_index_template/{index}", json=body, timeout=60).raise_for_status()


def _delete_index(es_url: str, index: str) -> None:
    import httpx

    httpx.delete(f"{es_url}/{index}-*", timeout=60)
    httpx.delete(f"{es_url}/_index_template/{index}", timeout=60)


class _SourceOnly:
    """A foreachBatch function that brings each micro-batch to the driver and drops it."""

    def __init__(self) -> None:
        self.records = 0

    def __call__(self, frame: Any, batch_id: int) -> None:
        from fraudwatch.streaming.batch_validation import RECORD_SCHEMA

        self.records += frame.select(*RECORD_SCHEMA.names).toArrow().num_rows


def _backlog(config: StreamBenchConfig, table: pa.Table) -> tuple[str, str]:
    from fraudwatch.streaming.produce import EventProducer, ensure_topics, records

    prefix, index = _names()
    ensure_topics(config.bootstrap, prefix)
    producer = EventProducer(config.bootstrap)
    producer.send(f"{prefix}transactions", records("transactions", table))
    producer.flush()
    return prefix, index


def throughput_run(
    config: StreamBenchConfig, spark: Any, table: pa.Table, work: Path, way: str
) -> dict[str, Any]:
    """Produce `table` as a backlog, then time draining it (available-now) one `way`:
    "source", "null" or "elasticsearch" (see the module's docstring)."""
    from fraudwatch.streaming.job import run_stream
    from fraudwatch.streaming.spark_source import start_query

    prefix, index = _backlog(config, table)
    if way == "elasticsearch":
        install_template(config, index)
    settings = _settings(config, prefix, index, work, available_now=True, null_sink=way == "null")
    load, dead, steps = _load(), 0, {}
    started = time.perf_counter()
    if way == "source":
        drop = _SourceOnly()
        start_query(spark, settings, drop).awaitTermination()
        done = drop.records
    else:
        processor = run_stream(settings, spark)
        done = sum(r.indexed for r in processor.results)
        dead = sum(r.dead_lettered for r in processor.results)
        steps = _steps(processor.results)
    seconds = time.perf_counter() - started
    if way == "elasticsearch":
        _delete_index(config.es_url, index)
    if done != table.num_rows:
        raise RuntimeError(
            f"{way} run handled {done} of {table.num_rows} transactions "
            f"({dead} dead-lettered: see the {prefix}dead-letter topic)"
        )
    return {
        "tx_per_s": table.num_rows / seconds,
        "seconds": round(seconds, 1),
        "step_seconds": steps,
        "load": [*load, *_load()],
    }


def elasticsearch_alone_run(
    config: StreamBenchConfig, table: pa.Table, work: Path
) -> dict[str, Any]:
    """The backlog's documents built first (scored without history), then only their bulk
    indexing timed, through the stream's sink: what the node takes on this machine."""
    from fraudwatch.elasticsearch.bulk import RetryBudget
    from fraudwatch.elasticsearch.client import connect
    from fraudwatch.elasticsearch.definitions import bootstrap_write_index
    from fraudwatch.models.bundle import ModelVersion
    from fraudwatch.streaming.batch_validation import RAW_TRANSACTION_SCHEMA
    from fraudwatch.streaming.compiled_features import score_transactions
    from fraudwatch.streaming.document_sinks import ElasticsearchSink
    from fraudwatch.streaming.es_documents import DocumentBuilder

    version = ModelVersion.load(config.models_dir)
    builder = DocumentBuilder()
    batches = []
    step = config.max_offsets_per_trigger
    for start in range(0, table.num_rows, step):
        part = table.slice(start, step).cast(RAW_TRANSACTION_SCHEMA)
        part = part.sort_by([("user_id", "ascending"), ("ts", "ascending")])
        scored = score_transactions(version, part)
        batches.append(builder.build(scored, version.version, 0.99, "2026-01-01T00:00:00Z"))
    _, index = _names()
    install_template(config, index)
    client = connect(config.es_url)
    bootstrap_write_index(client, index)
    sink = ElasticsearchSink(
        client,
        index,
        RetryBudget(retries=None, seconds=300),
        chunk_size=config.bulk_chunk,
        concurrency=config.bulk_concurrency,
    )
    load = _load()
    started = time.perf_counter()
    indexed = sum(sink.write(documents).indexed for documents in batches)
    seconds = time.perf_counter() - started
    sink.close()
    client.close()
    _delete_index(config.es_url, index)
    if indexed != table.num_rows:
        raise RuntimeError(f"indexed {indexed} of {table.num_rows} documents")
    return {"tx_per_s": table.num_rows / seconds, "load": [*load, *_load()]}


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

    from fraudwatch.streaming.job import MicroBatchProcessor
    from fraudwatch.streaming.produce import ensure_topics, producer_config, records
    from fraudwatch.streaming.spark_source import start_query

    prefix, index = _names()
    ensure_topics(config.bootstrap, prefix)
    install_template(config, index)
    settings = _settings(config, prefix, index, work)
    processor = MicroBatchProcessor(settings)
    processor.ensure_write_index()
    query = start_query(spark, settings, processor)
    poller = _SearchablePoller(config.es_url, index)
    poller.start()
    producer = Producer(producer_config(config.bootstrap))
    version = processor.version.version
    wanted = min(table.num_rows, config.rate * config.seconds)
    load = _load()
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
    batches = [r for r in processor.results if r.valid["transactions"]]
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
        "trigger_s": config.trigger_seconds,
        "micro_batches": len(batches),
        "median_batch_transactions": statistics.median(
            [r.valid["transactions"] for r in batches] or [0]
        ),
        "median_batch_step_seconds": _steps(batches, statistics.median) if batches else {},
        "load": [*load, *_load()],
    }


def bench_stream(config: StreamBenchConfig) -> dict:
    """Median throughput of each way over `repeats` backlog runs (the ways in turn within each
    repeat), the Elasticsearch-alone ceiling, then one latency run at `rate`."""
    from fraudwatch.streaming.spark_source import streaming_session

    work = Path(tempfile.mkdtemp(prefix="fraudwatch-stream-bench-"))
    table = _transactions(config.raw, max(config.backlog, config.rate * config.seconds))
    spark = streaming_session()
    ways = ("source", "null", "elasticsearch")
    try:
        backlog = table.slice(0, config.backlog)
        runs: dict[str, list[dict[str, Any]]] = {way: [] for way in ways}
        for _ in range(config.repeats):
            for way in ways:
                runs[way].append(throughput_run(config, spark, backlog, work, way))
        alone = [elasticsearch_alone_run(config, backlog, work) for _ in range(config.repeats)]
        median = {
            way: statistics.median(r["tx_per_s"] for r in found)
            for way, found in (*runs.items(), ("elasticsearch_alone", alone))
        }
        return {
            "backlog_transactions": backlog.num_rows,
            "max_offsets_per_trigger": config.max_offsets_per_trigger,
            "bulk": {"chunk": config.bulk_chunk, "concurrency": config.bulk_concurrency},
            "throughput_tx_per_s": {way: round(value) for way, value in median.items()},
            "ratios": {
                "null_sink_to_source": round(median["null"] / median["source"], 2),
                "elasticsearch_to_null_sink": round(median["elasticsearch"] / median["null"], 2),
                "elasticsearch_to_elasticsearch_alone": round(
                    median["elasticsearch"] / median["elasticsearch_alone"], 2
                ),
            },
            "runs": {
                way: [{**r, "tx_per_s": round(r["tx_per_s"])} for r in found]
                for way, found in (*runs.items(), ("elasticsearch_alone", alone))
            },
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
    parser.add_argument(
        "--max-offsets", type=int, default=StreamBenchConfig.max_offsets_per_trigger
    )
    parser.add_argument("--trigger", type=float, default=StreamBenchConfig.trigger_seconds)
    parser.add_argument("--bulk-chunk", type=int, default=StreamBenchConfig.bulk_chunk)
    parser.add_argument("--bulk-concurrency", type=int, default=StreamBenchConfig.bulk_concurrency)
    parser.add_argument("--template", type=Path, help="index template JSON (default: the repo's)")
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
        max_offsets_per_trigger=args.max_offsets,
        trigger_seconds=args.trigger,
        bulk_chunk=args.bulk_chunk,
        bulk_concurrency=args.bulk_concurrency,
        template=args.template,
    )
    print(json.dumps(bench_stream(config), indent=2))


if __name__ == "__main__":
    main()
