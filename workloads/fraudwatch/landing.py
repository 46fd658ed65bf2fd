"""Landing one day of raw events from Kafka: `fraudwatch land --date DAY --out RAW`.

The topics `transactions`, `logins` and `api-calls` (see streaming/schemas.py) are read for
the events whose own timestamp falls in [DAY, DAY + 1) and written as that day's partition of
the raw layout `fraudwatch generate` writes and `fraudwatch score --input` reads:

    RAW/transactions/date=DAY/part-kafka.parquet     (generator schema, one file per table)
    RAW/logins/date=DAY/part-kafka.parquet
    RAW/api_calls/date=DAY/part-kafka.parquet
    RAW/_landing/date=DAY/manifest.json              counts per topic, offsets read (written last)
    RAW/_landing/date=DAY/dead-letter.jsonl          every malformed record with its reason

How the day is found: each partition is sought with offsets_for_times to the first record whose
broker timestamp is at least DAY - clock_skew (a record reaches the broker after its event
happened, give or take producer clock skew), read up to the high watermark taken at the start
(or, with max_lateness, until a record's broker timestamp is past DAY + 1 + max_lateness), and
every record is then filed by its *event* timestamp: on DAY → landed; malformed → the
dead-letter file of the day of its event time (or, when that cannot be read, of its broker
timestamp); another day → left for that day's landing. Nothing is silently dropped.

Idempotency: everything is written to a staging directory first and moved into place only
when the whole day is read, replacing the previous partition of that day (a rerun replaces,
never duplicates). The manifest is removed first and written last, so a day without a
manifest is a day whose landing did not finish. Locally each partition is swapped in by a
rename; on S3 (Ceph), which has no rename, the day is uploaded under OUT/_staging/<token>/
first, then the day's objects are deleted and replaced by server-side copies, manifest last.
"""

from __future__ import annotations

import base64
import json
import logging
import re
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import typer

from fraudwatch.errors import UserError

#: Topic (without prefix) → table of the raw layout, as streaming.schemas.TOPICS has them.
TOPIC_TABLES = {"transactions": "transactions", "logins": "logins", "api-calls": "api_calls"}
SORT_KEYS = {"transactions": "tx_id", "logins": "event_id", "api_calls": "event_id"}
PART_NAME = "part-kafka.parquet"
LANDING_DIR = "_landing"  # underscore: not a table, `score --input` never reads it
MANIFEST = "manifest.json"
DEAD_LETTER_FILE = "dead-letter.jsonl"
DEFAULT_BOOTSTRAP = "127.0.0.1:9092"
DEFAULT_CLOCK_SKEW = timedelta(hours=1)
CONSUMER_GROUP = "fraudwatch-landing"  # offsets come from timestamps; nothing is committed
_BATCH_ROWS = 50_000
_DAY = timedelta(days=1)

log = logging.getLogger("fraudwatch.landing")
_kafka_log = logging.getLogger("fraudwatch.landing.kafka")
_kafka_log.addHandler(logging.NullHandler())  # librdkafka's chatter stays out of the CLI


@dataclass
class TopicCounts:
    read: int = 0  # records read in the window
    landed: int = 0  # events of the day written to the partition
    dead_letters: int = 0  # malformed records filed under this day
    other_days: int = 0  # records of other days (their own landing takes them)
    offsets: dict[str, list[int]] = field(default_factory=dict)  # partition → [first, end)


@dataclass
class LandingSummary:
    date: str
    out: str
    topics: dict[str, TopicCounts]

    @property
    def counts(self) -> dict[str, int]:
        """Events landed per table of the raw layout."""
        return {TOPIC_TABLES[t]: c.landed for t, c in self.topics.items()}

    @property
    def dead_letters(self) -> int:
        return sum(c.dead_letters for c in self.topics.values())

    def manifest(self, bootstrap: str, prefix: str, settings: dict[str, Any]) -> dict[str, Any]:
        return {
            "landed_by": "fraudwatch land",
            "date": self.date,
            "landed_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "source": {"kafka": bootstrap, "topic_prefix": prefix, **settings},
            "counts": self.counts,
            "dead_letters": self.dead_letters,
            "topics": {t: asdict(c) for t, c in self.topics.items()},
        }


# ---- arguments ---------------------------------------------------------------------------------


def parse_day(value: str | date) -> date:
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(value)
    except (TypeError, ValueError):
        raise UserError(f"--date {value!r} is not a date; use YYYY-MM-DD") from None


_DURATION = re.compile(r"^\s*(\d+)\s*([smhd])\s*$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def parse_duration(value: str | None) -> timedelta | None:
    """'90m', '6h', '2d' → timedelta; empty or None → None."""
    if value is None or str(value).strip() == "":
        return None
    match = _DURATION.match(str(value))
    if not match:
        raise UserError(f"duration {value!r} is not understood; use e.g. 30m, 6h or 2d")
    return timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})


# ---- Kafka -------------------------------------------------------------------------------------


def _consumer(bootstrap: str):
    from confluent_kafka import Consumer

    from fraudwatch.streaming.kafka_security import client_config

    return Consumer(
        client_config(
            bootstrap,
            **{
                "group.id": CONSUMER_GROUP,
                "enable.auto.commit": False,
                "enable.auto.offset.store": False,
                "enable.partition.eof": True,
                "auto.offset.reset": "earliest",
                "isolation.level": "read_committed",
                "client.id": "fraudwatch-landing",
                "logger": _kafka_log,
                "log.connection.close": False,
            },
        )
    )


def _partitions(consumer, bootstrap: str, topics: list[str], timeout_s: float) -> dict:
    from confluent_kafka import KafkaException

    try:
        metadata = consumer.list_topics(timeout=timeout_s)
    except KafkaException as exc:
        error = exc.args[0] if exc.args else exc
        reason = error.str() if hasattr(error, "str") else str(error)
        raise UserError(
            f"Kafka at {bootstrap} did not answer within {timeout_s:.0f} s ({reason}); "
            "check --bootstrap"
        ) from None
    found = {}
    for topic in topics:
        info = metadata.topics.get(topic)
        if info is None or info.error is not None or not info.partitions:
            raise UserError(
                f"topic {topic} does not exist on Kafka at {bootstrap}; check --topic-prefix or "
                "produce events first (fraudwatch generate --sink kafka)"
            )
        found[topic] = sorted(info.partitions)
    return found


def _start_offsets(consumer, topic: str, partitions: list[int], since_ms: int, timeout_s: float):
    """partition → (first offset to read, high watermark); first == high: nothing to read."""
    from confluent_kafka import TopicPartition

    wanted = [TopicPartition(topic, p, since_ms) for p in partitions]
    sought = {tp.partition: tp.offset for tp in consumer.offsets_for_times(wanted, timeout_s)}
    out = {}
    for p in partitions:
        low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=timeout_s)
        first = sought.get(p, -1)
        first = high if first < 0 else max(first, low)  # -1: no record that recent
        out[p] = (first, high)
    return out


def _event_time_of(value: bytes | None) -> datetime | None:
    """Best-effort event time of a record that failed validation (to file its dead letter)."""
    try:
        ts = json.loads(value or b"")["event"]["ts"]
        parsed = datetime.fromisoformat(str(ts).replace("Z", "+00:00"))
        return parsed if parsed.tzinfo else None
    except (ValueError, TypeError, KeyError, AttributeError):
        return None


def _dead_letter(topic: str, message, reason: str) -> dict[str, Any]:
    value = message.value()
    key = message.key()
    try:
        text, encoding = (value.decode("utf-8"), "utf-8") if value is not None else (None, None)
    except UnicodeDecodeError:
        text, encoding = base64.b64encode(value).decode(), "base64"
    _, broker_ms = message.timestamp()
    return {
        "topic": topic,
        "partition": message.partition(),
        "offset": message.offset(),
        "broker_timestamp": datetime.fromtimestamp(broker_ms / 1000, UTC).isoformat(),
        "key": key.decode("utf-8", "replace") if key is not None else None,
        "reason": reason,
        "value": text,
        "value_encoding": encoding,
    }


class _TableBuffer:
    """Validated events of one table, converted to Arrow in batches of the generator's schema."""

    def __init__(self, table: str) -> None:
        from fraudwatch.contract import events

        self.schema = {
            "transactions": events.TRANSACTION_SCHEMA,
            "logins": events.LOGIN_SCHEMA,
            "api_calls": events.API_CALL_SCHEMA,
        }[table]
        self.table = table
        self.rows: list[dict[str, Any]] = []
        self.tables: list = []

    def add(self, event: dict[str, Any]) -> None:
        self.rows.append(event)
        if len(self.rows) >= _BATCH_ROWS:
            self._flush()

    def _flush(self) -> None:
        import pyarrow as pa

        if self.rows:
            self.tables.append(pa.Table.from_pylist(self.rows, schema=self.schema))
            self.rows = []

    def result(self):
        """All events, sorted by (user_id, ts, id): the same file whatever the read order."""
        import pyarrow as pa

        self._flush()
        if not self.tables:
            return self.schema.empty_table()
        table = pa.concat_tables(self.tables).unify_dictionaries().combine_chunks()
        keys = [("user_id", "ascending"), ("ts", "ascending"), (SORT_KEYS[self.table], "ascending")]
        return table.sort_by(keys)


def read_day(
    bootstrap: str,
    day: date,
    topic_prefix: str,
    clock_skew: timedelta = DEFAULT_CLOCK_SKEW,
    max_lateness: timedelta | None = None,
    timeout_s: float = 30.0,
    on_total: Callable[[int], None] | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> tuple[LandingSummary, dict[str, Any], list[dict[str, Any]]]:
    """Read the day's events: (summary, table name → Arrow table, dead letters)."""
    from confluent_kafka import KafkaError, TopicPartition

    from fraudwatch.streaming.schemas import InvalidEvent, validate

    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    end = start + _DAY
    since_ms = int((start - clock_skew).timestamp() * 1000)
    stop_ms = int((end + max_lateness).timestamp() * 1000) if max_lateness is not None else None
    names = {f"{topic_prefix}{t}": t for t in TOPIC_TABLES}
    consumer = _consumer(bootstrap)
    try:
        layout = _partitions(consumer, bootstrap, list(names), timeout_s)
        counts = {t: TopicCounts() for t in TOPIC_TABLES}
        pending: dict[tuple[str, int], int] = {}  # (topic, partition) → high watermark
        assignment = []
        for full, partitions in layout.items():
            offsets = _start_offsets(consumer, full, partitions, since_ms, timeout_s)
            for p, (first, high) in offsets.items():
                counts[names[full]].offsets[str(p)] = [first, first]
                if first < high:
                    pending[(full, p)] = high
                    assignment.append(TopicPartition(full, p, first))
        if on_total:
            on_total(
                sum(high - tp.offset for tp, high in zip(assignment, pending.values(), strict=True))
            )
        buffers = {t: _TableBuffer(TOPIC_TABLES[t]) for t in TOPIC_TABLES}
        dead: list[dict[str, Any]] = []
        if assignment:
            consumer.assign(assignment)
        idle_since = time.monotonic()
        while pending:
            messages = consumer.consume(num_messages=5_000, timeout=1.0)
            if not messages:
                if time.monotonic() - idle_since > timeout_s:
                    left = ", ".join(f"{t}[{p}]" for t, p in sorted(pending))
                    raise UserError(
                        f"Kafka at {bootstrap} delivered nothing for {timeout_s:.0f} s while "
                        f"{left} still had records to read; check the brokers and rerun"
                    )
                continue
            idle_since = time.monotonic()
            finished: list[tuple[str, int]] = []
            for message in messages:
                key = (message.topic(), message.partition())
                high = pending.get(key)
                error = message.error()
                if error is not None:
                    if error.code() == KafkaError._PARTITION_EOF:
                        if high is not None:
                            del pending[key]
                            finished.append(key)
                        continue
                    if error.fatal() or not error.retriable():
                        raise UserError(
                            f"reading {key[0]}[{key[1]}] from Kafka at {bootstrap}: {error}"
                        )
                    continue
                if high is None or message.offset() >= high:
                    continue  # beyond the snapshot, or a partition already finished
                topic = names[key[0]]
                c = counts[topic]
                c.offsets[str(key[1])][1] = message.offset() + 1
                _, broker_ms = message.timestamp()
                if message.offset() + 1 >= high or (stop_ms is not None and broker_ms > stop_ms):
                    del pending[key]  # the snapshot's end, or past DAY's end + max lateness
                    finished.append(key)
                    if stop_ms is not None and broker_ms > stop_ms:
                        c.offsets[str(key[1])][1] = message.offset()
                        continue
                c.read += 1
                try:
                    event = validate(topic, message.value())
                except InvalidEvent as exc:
                    when = _event_time_of(message.value())
                    when = when or datetime.fromtimestamp(broker_ms / 1000, UTC)
                    if start <= when < end:
                        c.dead_letters += 1
                        dead.append(_dead_letter(key[0], message, str(exc)))
                    else:
                        c.other_days += 1  # that day's landing files its dead letter
                    continue
                if start <= event["ts"] < end:
                    buffers[topic].add(event)
                    c.landed += 1
                else:
                    c.other_days += 1
            if on_progress:
                on_progress(sum(1 for m in messages if m.error() is None))
            if finished:
                consumer.pause([TopicPartition(t, p) for t, p in finished])
        tables = {TOPIC_TABLES[t]: b.result() for t, b in buffers.items()}
    finally:
        consumer.close()
    summary = LandingSummary(day.isoformat(), "", counts)
    return summary, tables, dead


# ---- placing the day ---------------------------------------------------------------------------


def _write_staged(staging: Path, day: str, tables: dict, dead: list, manifest: dict) -> None:
    import pyarrow.parquet as pq

    for table, data in tables.items():
        folder = staging / table / f"date={day}"
        folder.mkdir(parents=True)
        pq.write_table(data, folder / PART_NAME, compression="zstd")
    meta = staging / LANDING_DIR / f"date={day}"
    meta.mkdir(parents=True)
    with (meta / DEAD_LETTER_FILE).open("w", encoding="utf-8") as f:
        for letter in dead:
            f.write(json.dumps(letter, sort_keys=True) + "\n")
    (meta / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")


def _partition_folders(day: str) -> list[str]:
    """The day's folders below the raw root, the landing metadata (with the manifest) last."""
    return [f"{t}/date={day}" for t in TOPIC_TABLES.values()] + [f"{LANDING_DIR}/date={day}"]


def _place(staging: Path, out: str | Path, day: str) -> None:
    """Put the staged day in place of the day's partition under `out`, its manifest removed
    first and written last (atomic.replace_folders: renames locally, staged and swapped on
    S3)."""
    from fraudwatch.locations import atomic

    manifest = f"{LANDING_DIR}/date={day}/{MANIFEST}"
    atomic.replace_folders(staging, out, _partition_folders(day), [manifest])


def check_out(out: str | Path) -> None:
    """A clear error for an unusable --out, before anything is read."""
    from fraudwatch.locations import storage

    out = str(out)
    if storage.is_s3(out):
        storage.s3_path(out)  # s3://bucket alone
        storage.s3_filesystem()  # missing S3 settings
    elif Path(out).exists() and not Path(out).is_dir():
        raise UserError(f"{out} exists and is not a directory; choose another --out")


def land_day(
    bootstrap: str,
    day: str | date,
    out: str | Path,
    topic_prefix: str | None = None,
    clock_skew: timedelta = DEFAULT_CLOCK_SKEW,
    max_lateness: timedelta | None = None,
    timeout_s: float = 30.0,
    on_total: Callable[[int], None] | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> LandingSummary:
    """Land the events of `day` from Kafka at `bootstrap` as that day's partition under `out`
    (a local directory or s3://bucket/prefix), replacing a previous landing of the day."""
    from fraudwatch.contract.events import DEFAULT_TOPIC_PREFIX
    from fraudwatch.locations import atomic

    d = parse_day(day)
    if not bootstrap:
        raise UserError(
            "no Kafka address: pass --bootstrap HOST:PORT or set FRAUDWATCH_KAFKA_BOOTSTRAP"
        )
    prefix = DEFAULT_TOPIC_PREFIX if topic_prefix is None else topic_prefix
    out = str(out)
    check_out(out)
    summary, tables, dead = read_day(
        bootstrap, d, prefix, clock_skew, max_lateness, timeout_s, on_total, on_progress
    )
    summary.out = out
    settings = {
        "clock_skew_seconds": int(clock_skew.total_seconds()),
        "max_lateness_seconds": (
            None if max_lateness is None else int(max_lateness.total_seconds())
        ),
    }
    manifest = summary.manifest(bootstrap, prefix, settings)
    with atomic.staging_beside(out, "landing") as staging:
        _write_staged(staging, d.isoformat(), tables, dead, manifest)
        _place(staging, out, d.isoformat())
    log.info("landed %s into %s: %s", d, out, summary.counts)
    return summary


def landing_manifest(out: str | Path, day: str | date) -> dict[str, Any] | None:
    """The manifest of a landed day, or None when the day has not (completely) landed."""
    from fraudwatch.locations import storage

    text = storage.read_text(
        f"{str(out).rstrip('/')}/{LANDING_DIR}/date={parse_day(day)}/{MANIFEST}"
    )
    return json.loads(text) if text else None


# ---- the command ------------------------------------------------------------------------------


def land(
    date_: Annotated[str, typer.Option("--date", help="The day to land (UTC), YYYY-MM-DD")],
    out: Annotated[
        str, typer.Option(help="Raw data directory or s3://bucket/prefix (the day is replaced)")
    ],
    bootstrap: Annotated[
        str,
        typer.Option(
            "--bootstrap",
            "--bootstrap-servers",
            envvar="FRAUDWATCH_KAFKA_BOOTSTRAP",
            help="Kafka bootstrap servers",
        ),
    ] = DEFAULT_BOOTSTRAP,
    topic_prefix: Annotated[str | None, typer.Option(help="Prefix of the event topics")] = None,
    max_lateness: Annotated[
        str,
        typer.Option(
            help="Stop reading a partition at records this far past the day's end (e.g. 6h); "
            "default: read to the end of every partition"
        ),
    ] = "",
    clock_skew: Annotated[
        str, typer.Option(help="How early (broker time) a day's event may have reached Kafka")
    ] = "1h",
    timeout: Annotated[float, typer.Option(help="Seconds to wait for an answer from Kafka")] = 30.0,
) -> None:
    """Land one day of raw events from Kafka in the layout `fraudwatch score --input` reads."""
    from contextlib import ExitStack

    from fraudwatch.progress import console, progress_bar

    lateness = parse_duration(max_lateness)
    skew = parse_duration(clock_skew) or timedelta(0)
    day = parse_day(date_)
    check_out(out)
    with ExitStack() as stack:
        bar: dict[str, Any] = {}

        def on_total(total: int) -> None:  # the bar appears once Kafka has answered
            bar["bar"] = stack.enter_context(progress_bar())
            bar["task"] = bar["bar"].add_task(f"read {day} from Kafka", total=total)

        summary = land_day(
            bootstrap,
            day,
            out,
            topic_prefix,
            clock_skew=skew,
            max_lateness=lateness,
            timeout_s=timeout,
            on_total=on_total,
            on_progress=lambda n: bar["bar"].advance(bar["task"], n),
        )
    c = summary.counts
    console.print(
        f"landed {c['transactions']:,} transactions, {c['logins']:,} logins, "
        f"{c['api_calls']:,} API calls of {day} to {out}; "
        f"{summary.dead_letters:,} malformed records in "
        f"{LANDING_DIR}/date={day}/{DEAD_LETTER_FILE}",
        highlight=False,
        soft_wrap=True,
    )
