"""A micro-batch's Kafka records validated together, column by column, with Arrow (issue 19).

`schemas.validate` checks one record with the pydantic models: they are the definition, and
the source of every dead-letter reason. Checking each of a 20,000-record micro-batch that way
was about an eighth of the stream's time, so a micro-batch is checked as vectors first:

1. a record goes the vectorised way only if its value has the shape our producers write: one
   JSON object holding one nested object (the event), in printable ASCII without escapes or
   other braces (so every value is one line, and one row of the parse below);
2. those values are parsed together by Arrow's JSON reader against the envelope's types:
   unknown fields, duplicate keys, wrong JSON types and ids beyond int64 are errors there. A
   parse error splits the block in halves until the records at fault are found (a block of at
   most `SMALL_BLOCK` records goes record by record);
3. each field is checked as a vector against the constraints of its pydantic field (`RULES`):
   enumerations, lengths, ranges, IPv4 addresses, UTC timestamps, the record key.

A record that any step does not accept is validated by `schemas.validate` on its own: it may be
valid after all (an IPv6 address, a timestamp with another offset, a number given as text that
pydantic converts) or it gets its dead-letter reason there. So the vectorised path accepts a
subset of what the models accept, with the same values, and the reasons are the models' own:
tests/unit/core/test_stream_batch_validation.py checks the two agree case by case.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pa_json

from fraudwatch.contract.events import (
    API_ENDPOINTS,
    CHANNELS,
    LOGIN_METHODS,
    MAX_ID,
    STATUSES,
    TX_TYPES,
)
from fraudwatch.streaming.schemas import EVENT_TYPES, TOPICS, InvalidEvent, validate

#: The columns of a micro-batch as Spark's Kafka source gives them.
RECORD_SCHEMA = pa.schema(
    [
        ("topic", pa.string()),
        ("partition", pa.int32()),
        ("offset", pa.int64()),
        ("key", pa.binary()),
        ("value", pa.binary()),
    ]
)
RAW_TRANSACTION_SCHEMA = pa.schema(
    [
        ("tx_id", pa.int64()),
        ("user_id", pa.int64()),
        ("ts", pa.timestamp("us", tz="UTC")),
        ("amount", pa.float64()),
        ("currency", pa.string()),
        ("tx_type", pa.string()),
        ("channel", pa.string()),
        ("ip", pa.string()),
        ("device_id", pa.string()),
        ("country", pa.string()),
        ("counterparty", pa.string()),
        ("status", pa.string()),
        ("label", pa.int8()),
        ("scenario", pa.string()),
    ]
)
#: The schema version the rules below describe; records of any other go record by record.
VECTORISED_VERSION = 1
#: A parse error in a block of at most this many records sends them record by record.
SMALL_BLOCK = 64

# Printable ASCII but for the braces and the backslash; see step 1 above.
_PLAIN = r"[\x20-\x5b\x5d-\x7a\x7c\x7e]*"
_SHAPE = rf"^\{{{_PLAIN}\{{{_PLAIN}\}}{_PLAIN}\}}$"
# What datetime parsing and UTC conversion accept for certain: ISO 8601 in UTC, at most
# microseconds (an impossible day such as 02-30 is caught when the column is converted).
_UTC_TIMESTAMP = (
    r"^[1-9][0-9]{3}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])"
    r"T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\.[0-9]{1,6})?(Z|\+00:00)$"
)
# Dotted-quad IPv4 without leading zeros, as ipaddress.ip_address accepts it.
_OCTET = r"(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_IPV4 = rf"^{_OCTET}(\.{_OCTET}){{3}}$"

Check = Callable[[pa.Array], pa.Array]


@dataclass(frozen=True)
class Rule:
    """One event field: its Arrow type in the parse and its check (True = valid)."""

    arrow_type: pa.DataType
    check: Check
    #: Parsed as text and converted afterwards (timestamps).
    convert: pa.DataType | None = None


def _id(values: pa.Array) -> pa.Array:
    return pc.and_(pc.greater_equal(values, 0), pc.less_equal(values, MAX_ID))


def _in(allowed: tuple[str, ...]) -> Check:
    return lambda values: pc.is_in(values, value_set=pa.array(allowed))


def _length(low: int, high: int | None = None) -> Check:
    # ASCII only (step 1), so characters are bytes.
    def check(values: pa.Array) -> pa.Array:
        length = pc.utf8_length(values)
        ok = pc.greater_equal(length, low)
        return ok if high is None else pc.and_(ok, pc.less_equal(length, high))

    return check


def _non_negative(values: pa.Array) -> pa.Array:
    # A JSON number Arrow reads is finite; pydantic takes -0.0 (it is >= 0), as does this.
    return pc.and_(pc.greater_equal(values, 0.0), pc.is_finite(values))


def _regex(pattern: str) -> Check:
    return lambda values: pc.match_substring_regex(values, pattern)


def _present(values: pa.Array) -> pa.Array:
    return pc.is_valid(values)


def _label(values: pa.Array) -> pa.Array:
    return pc.is_in(values, value_set=pa.array([0, 1]))


_COMMON = {
    "user_id": Rule(pa.int64(), _id),
    "ts": Rule(pa.string(), _regex(_UTC_TIMESTAMP), convert=pa.timestamp("us", tz="UTC")),
    "label": Rule(pa.int64(), _label),
    "scenario": Rule(pa.string(), _present),
}
#: Per topic, the rule of every field of its v1 event (schemas.TransactionV1, LoginV1,
#: ApiCallV1); a test checks the names agree with the models.
RULES: dict[str, dict[str, Rule]] = {
    "transactions": {
        "tx_id": Rule(pa.int64(), _id),
        **_COMMON,
        "amount": Rule(pa.float64(), _non_negative),
        "currency": Rule(pa.string(), _length(3, 3)),
        "tx_type": Rule(pa.string(), _in(TX_TYPES)),
        "channel": Rule(pa.string(), _in(CHANNELS)),
        "ip": Rule(pa.string(), _regex(_IPV4)),
        "device_id": Rule(pa.string(), _length(1)),
        "country": Rule(pa.string(), _length(2, 2)),
        "counterparty": Rule(pa.string(), _length(1)),
        "status": Rule(pa.string(), _in(STATUSES)),
    },
    "logins": {
        "event_id": Rule(pa.int64(), _id),
        **_COMMON,
        "ip": Rule(pa.string(), _regex(_IPV4)),
        "device_id": Rule(pa.string(), _length(1)),
        "country": Rule(pa.string(), _length(2, 2)),
        "method": Rule(pa.string(), _in(LOGIN_METHODS)),
        "success": Rule(pa.bool_(), _present),
    },
    "api-calls": {
        "event_id": Rule(pa.int64(), _id),
        **_COMMON,
        "ip": Rule(pa.string(), _regex(_IPV4)),
        "endpoint": Rule(pa.string(), _in(API_ENDPOINTS)),
        "status_code": Rule(
            pa.int64(),
            lambda v: pc.and_(pc.greater_equal(v, 100), pc.less_equal(v, 599)),
        ),
        "latency_ms": Rule(pa.float64(), _non_negative),
    },
}
#: Optional fields (None when absent); every other field must be present.
OPTIONAL = frozenset({"label", "scenario"})


def _envelope_schema(topic: str) -> pa.Schema:
    event = pa.struct([(name, rule.arrow_type) for name, rule in RULES[topic].items()])
    return pa.schema(
        [("schema_version", pa.int64()), ("event_type", pa.string()), ("event", event)]
    )


_ENVELOPE_SCHEMAS = {topic: _envelope_schema(topic) for topic in RULES}


@dataclass
class ValidatedBatch:
    """A micro-batch's records sorted into what the stream uses."""

    #: Valid transactions (RAW_TRANSACTION_SCHEMA), ordered by user, time, tx_id and, for
    #: equal ones, the order of the records.
    transactions: pa.Table
    #: Valid records per topic (without prefix).
    valid: dict[str, int]
    #: (record, reason) of every invalid record, in the order of the records.
    failed: list[tuple[dict[str, Any], str]] = field(default_factory=list)


def _one_by_one(topic: str, record: dict[str, Any]) -> dict[str, Any] | str:
    """The record's event, or the reason it is refused (the models' own check)."""
    try:
        event = validate(topic, record["value"])
        if str(event["user_id"]).encode() != (record["key"] or b""):
            raise InvalidEvent(
                f"record key {record['key']!r} is not the event's user_id {event['user_id']}"
            )
    except InvalidEvent as exc:
        return str(exc)
    return event


def _parse(values: pa.Array, schema: pa.Schema) -> tuple[list[pa.Table], list[np.ndarray]]:
    """Arrow's parse of the values (one line each), in blocks: the parsed tables and, for each,
    the positions (into `values`) of its rows. Values in blocks that fail to parse and are
    too small to split are left out."""
    options = pa_json.ParseOptions(explicit_schema=schema, unexpected_field_behavior="error")
    read = pa_json.ReadOptions(use_threads=False, block_size=1 << 30)
    tables: list[pa.Table] = []
    positions: list[np.ndarray] = []
    pending = [(0, len(values))]
    while pending:
        start, stop = pending.pop()
        block = values.slice(start, stop - start)
        text = b"\n".join(block.to_pylist())
        try:
            table = pa_json.read_json(io.BytesIO(text), read_options=read, parse_options=options)
        except pa.ArrowInvalid:
            table = None
        if table is not None and table.num_rows == len(block):
            tables.append(table)
            positions.append(np.arange(start, stop))
        elif stop - start > SMALL_BLOCK:
            middle = (start + stop) // 2
            pending += [(middle, stop), (start, middle)]
    return tables, positions


def _utc_times(text: pa.Array) -> tuple[pa.Array, np.ndarray]:
    """The timestamps of canonical UTC text, and which converted (an impossible date such as
    February 30th does not; it goes record by record)."""
    target = pa.timestamp("us", tz="UTC")
    try:
        return pc.cast(text, target), np.ones(len(text), dtype=bool)
    except pa.ArrowInvalid:
        converted, ok = [], np.ones(len(text), dtype=bool)
        for n, value in enumerate(text.to_pylist()):
            try:
                converted.append(pc.cast(pa.array([value]), target)[0].as_py())
            except pa.ArrowInvalid:
                converted.append(None)
                ok[n] = False
        return pa.array(converted, target), ok


def _vectorised(
    topic: str, keys: pa.Array, values: pa.Array
) -> tuple[np.ndarray, dict[str, pa.Array]]:
    """Positions (into `values`) of the records accepted as vectors, and their event columns."""
    shaped = pc.fill_null(pc.match_substring_regex(values, _SHAPE), False)
    candidates = np.flatnonzero(shaped.to_numpy(zero_copy_only=False))
    if len(candidates) == 0:
        return candidates, {}
    tables, blocks = _parse(values.take(candidates), _ENVELOPE_SCHEMAS[topic])
    if not tables:
        return np.empty(0, dtype=np.int64), {}
    parsed = pa.concat_tables(tables)
    where = candidates[np.concatenate(blocks)]
    event = parsed["event"].combine_chunks()
    ok = pc.and_(
        pc.equal(parsed["schema_version"], VECTORISED_VERSION),
        pc.equal(parsed["event_type"], EVENT_TYPES[topic]),
    )
    ok = pc.and_(ok, pc.is_valid(event))
    columns: dict[str, pa.Array] = {}
    for name, rule in RULES[topic].items():
        column = pc.struct_field(event, name)
        columns[name] = column
        check = pc.fill_null(rule.check(column), False)
        if name in OPTIONAL:
            check = pc.or_(pc.is_null(column), check)
        ok = pc.and_(ok, check)
    key_of_user = pc.cast(pc.cast(columns["user_id"], pa.string()), pa.binary())
    ok = pc.and_(ok, pc.fill_null(pc.equal(keys.take(where), key_of_user), False))
    accepted = np.asarray(pc.fill_null(ok, False).to_numpy(zero_copy_only=False), dtype=bool)
    selected = {name: column.filter(pa.array(accepted)) for name, column in columns.items()}
    for name, rule in RULES[topic].items():
        if rule.convert is not None:
            selected[name], converted = _utc_times(selected[name])
            if not converted.all():
                accepted[np.flatnonzero(accepted)[~converted]] = False
                mask = pa.array(converted)
                selected = {n: c.filter(mask) for n, c in selected.items()}
    return where[accepted], selected


def _transactions(columns: dict[str, pa.Array], events: list[dict[str, Any]]) -> pa.Table:
    """One table of the vectorised columns followed by the events validated one by one."""
    parts = []
    if columns:
        parts.append(
            pa.table(
                [
                    columns[name].cast(f.type)
                    for name, f in zip(
                        RAW_TRANSACTION_SCHEMA.names, RAW_TRANSACTION_SCHEMA, strict=True
                    )
                ],
                schema=RAW_TRANSACTION_SCHEMA,
            )
        )
    if events or not parts:
        parts.append(
            pa.table(
                {n: [e.get(n) for e in events] for n in RAW_TRANSACTION_SCHEMA.names},
                schema=RAW_TRANSACTION_SCHEMA,
            )
        )
    return pa.concat_tables(parts)


def transaction_table(events: list[dict[str, Any]]) -> pa.Table:
    """Validated transaction events as a raw-transactions table, ordered by user and time."""
    table = _transactions({}, events)
    return table.sort_by([("user_id", "ascending"), ("ts", "ascending"), ("tx_id", "ascending")])


def validate_batch(records: pa.Table, topic_prefix: str) -> ValidatedBatch:
    """Validate a micro-batch's records (RECORD_SCHEMA): the valid transactions as a table,
    counts of valid records per topic, and the invalid records with their reasons."""
    # The topic without the prefix (`str.removeprefix`).
    prefixed = pc.starts_with(records["topic"], topic_prefix)
    names = pc.if_else(
        prefixed,
        pc.utf8_slice_codeunits(records["topic"], len(topic_prefix)),
        records["topic"],
    ).combine_chunks()
    keys = records["key"].combine_chunks()
    values = records["value"].combine_chunks()
    valid = dict.fromkeys(TOPICS, 0)
    failed: list[tuple[int, dict[str, Any], str]] = []
    columns: dict[str, pa.Array] = {}
    order: list[np.ndarray] = []
    slow_events: list[dict[str, Any]] = []
    slow_order: list[int] = []
    one_by_one: list[tuple[str, np.ndarray]] = []
    for topic in TOPICS:
        positions = np.flatnonzero(pc.equal(names, topic).to_numpy(zero_copy_only=False))
        if len(positions) == 0:
            continue
        fast, fast_columns = _vectorised(topic, keys.take(positions), values.take(positions))
        valid[topic] += len(fast)
        if topic == "transactions" and len(fast):
            columns = fast_columns
            order.append(positions[fast])
        rest = np.setdiff1d(np.arange(len(positions)), fast, assume_unique=True)
        one_by_one.append((topic, positions[rest]))
    # A topic the stream does not read cannot be valid; the models' check says why.
    unread = pc.invert(pc.is_in(names, value_set=pa.array(list(TOPICS))))
    for position in np.flatnonzero(unread.to_numpy(zero_copy_only=False)):
        one_by_one.append((names[int(position)].as_py(), np.array([position])))
    for topic, positions in one_by_one:
        for position in positions:
            record = records.slice(int(position), 1).to_pylist()[0]
            outcome = _one_by_one(topic, record)
            if isinstance(outcome, str):
                failed.append((int(position), record, outcome))
            elif topic in valid:
                valid[topic] += 1
                if topic == "transactions":
                    slow_events.append(outcome)
                    slow_order.append(int(position))
    table = _transactions(columns, slow_events)
    arrival = np.concatenate([*order, np.asarray(slow_order, dtype=np.int64)])
    table = table.append_column("arrival", pa.array(arrival, pa.int64()))
    table = table.sort_by(
        [
            ("user_id", "ascending"),
            ("ts", "ascending"),
            ("tx_id", "ascending"),
            ("arrival", "ascending"),
        ]
    ).drop_columns(["arrival"])
    failed.sort(key=lambda item: item[0])
    return ValidatedBatch(table, valid, [(record, reason) for _, record, reason in failed])
