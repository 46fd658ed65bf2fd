"""A micro-batch validated as vectors (`streaming.batch_validation`, issue 19) must give exactly
what validating each record with the pydantic models gives (`schemas.validate`, as the stream
did before): the same valid transactions with the same values, the same counts, and the same
dead letters with the same reasons, whatever is wrong with a record."""

from __future__ import annotations

import json
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from fraudwatch.generator.population import GeneratorConfig
from fraudwatch.generator.writer import generate
from fraudwatch.streaming.batch_validation import (
    RAW_TRANSACTION_SCHEMA,
    RECORD_SCHEMA,
    RULES,
    _vectorised,
    transaction_table,
    validate_batch,
)
from fraudwatch.streaming.produce import records
from fraudwatch.streaming.schemas import ENVELOPES, TOPICS, InvalidEvent, validate

PREFIX = "fw."


def reference(batch: list[dict[str, Any]]) -> tuple[pa.Table, dict[str, int], list]:
    """The stream's validation before this change: each record through the models."""
    valid: dict[str, list[dict[str, Any]]] = {t: [] for t in TOPICS}
    failed = []
    for record in batch:
        topic = record["topic"].removeprefix(PREFIX)
        try:
            event = validate(topic, record["value"])
            if str(event["user_id"]).encode() != (record["key"] or b""):
                raise InvalidEvent(
                    f"record key {record['key']!r} is not the event's user_id {event['user_id']}"
                )
            valid[topic].append(event)
        except InvalidEvent as exc:
            failed.append((record, str(exc)))
    counts = {t: len(v) for t, v in valid.items()}
    return transaction_table(valid["transactions"]), counts, failed


def as_records(pairs: list[tuple[str, bytes | None, bytes | None]]) -> list[dict[str, Any]]:
    return [
        {"topic": f"{PREFIX}{topic}", "partition": 0, "offset": n, "key": key, "value": value}
        for n, (topic, key, value) in enumerate(pairs)
    ]


def assert_agree(batch: list[dict[str, Any]]) -> Any:
    table, counts, failed = reference(batch)
    got = validate_batch(pa.Table.from_pylist(batch, schema=RECORD_SCHEMA), PREFIX)
    assert got.valid == counts
    assert [(r["offset"], reason) for r, reason in got.failed] == [
        (r["offset"], reason) for r, reason in failed
    ]
    assert got.failed == failed
    assert got.transactions.schema == table.schema
    assert got.transactions.equals(table), "the valid transactions differ"
    return got


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> dict[str, pa.Table]:
    out = tmp_path_factory.mktemp("batch-validation") / "raw"
    generate(GeneratorConfig(users=30, transactions=400, seed=11, days=5), out)
    return {topic: pq.read_table(out / table) for topic, table in TOPICS.items()}


def generated_records(generated: dict[str, pa.Table]) -> list[tuple[str, bytes, bytes]]:
    pairs = []
    for topic, table in generated.items():
        columns = [c for c in table.column_names if c != "date"]
        pairs += [(topic, k, v) for k, v in records(topic, table.select(columns))]
    return pairs


def test_the_rules_name_every_field_of_the_models() -> None:
    for (topic, version), model in ENVELOPES.items():
        assert version == 1, "a new schema version needs its rules (or goes record by record)"
        event = model.model_fields["event"].annotation
        assert set(RULES[topic]) == set(event.model_fields), topic  # type: ignore[union-attr]


def test_generated_records_are_all_accepted_as_vectors(generated: dict[str, pa.Table]) -> None:
    pairs = generated_records(generated)
    got = assert_agree(as_records(pairs))
    assert got.failed == []
    for topic in TOPICS:  # every record went the vectorised way, none one by one
        mine = [(k, v) for t, k, v in pairs if t == topic]
        keys = pa.array([k for k, _ in mine], pa.binary())
        values = pa.array([v for _, v in mine], pa.binary())
        accepted, _ = _vectorised(topic, keys, values)
        assert len(accepted) == len(mine), topic


GOOD = {
    "tx_id": 7,
    "user_id": 5,
    "ts": "2026-01-02T10:00:00.250Z",
    "amount": 12.5,
    "currency": "EUR",
    "tx_type": "payment",
    "channel": "web",
    "ip": "10.0.0.1",
    "device_id": "dev-1",
    "country": "DE",
    "counterparty": "cp-1",
    "status": "completed",
    "label": 0,
    "scenario": None,
}


def envelope_text(event: dict[str, Any], **outer: Any) -> bytes:
    body = {"schema_version": 1, "event_type": "transaction", "event": event, **outer}
    return json.dumps(body, separators=(",", ":")).encode()


def changed(**fields: Any) -> bytes:
    return envelope_text({**GOOD, **fields})


def without(name: str) -> bytes:
    return envelope_text({k: v for k, v in GOOD.items() if k != name})


#: Records that are wrong, or unusual but valid, in every way we could think of.
CASES: dict[str, tuple[bytes | None, bytes | None]] = {
    "good": (b"5", changed()),
    "good, no label or scenario": (b"5", without("label")),
    "amount as text (pydantic converts it)": (b"5", changed(amount="12.5")),
    "amount as an integer": (b"5", changed(amount=12)),
    "amount negative": (b"5", changed(amount=-1.0)),
    "amount -0.0": (b"5", changed(amount=-0.0)),
    "amount too large for a double": (b"5", changed(amount=10**400)),
    "amount a huge integer": (b"5", changed(amount=123456789012345678901234567890)),
    "amount missing": (b"5", without("amount")),
    "amount null": (b"5", changed(amount=None)),
    "tx_id beyond int64": (b"5", changed(tx_id=2**64)),
    "tx_id negative": (b"5", changed(tx_id=-1)),
    "tx_id as text": (b"5", changed(tx_id="7")),
    "tx_id as a float": (b"5", changed(tx_id=7.0)),
    "tx_id true": (b"5", changed(tx_id=True)),
    "user_id beyond MAX_ID": (str(2**63).encode(), changed(user_id=2**63)),
    "ts without offset": (b"5", changed(ts="2026-01-02T10:00:00")),
    "ts with another offset": (b"5", changed(ts="2026-01-02T10:00:00+01:00")),
    "ts +00:00": (b"5", changed(ts="2026-01-02T10:00:00+00:00")),
    "ts February 30th": (b"5", changed(ts="2026-02-30T10:00:00Z")),
    "ts 29th February of a leap year": (b"5", changed(ts="2028-02-29T10:00:00Z")),
    "ts seven fractional digits": (b"5", changed(ts="2026-01-02T10:00:00.1234567Z")),
    "ts lower-case z": (b"5", changed(ts="2026-01-02T10:00:00z")),
    "ts date only": (b"5", changed(ts="2026-01-02")),
    "ts out of range in UTC": (b"5", changed(ts="0001-01-01T00:00:00+01:00")),
    "ts a number": (b"5", changed(ts=1767348000)),
    "ip v6": (b"5", changed(ip="::1")),
    "ip with a leading zero": (b"5", changed(ip="01.2.3.4")),
    "ip octet too large": (b"5", changed(ip="256.1.1.1")),
    "ip three octets": (b"5", changed(ip="1.2.3")),
    "unknown event field": (b"5", changed(extra=1)),
    "unknown envelope field": (b"5", envelope_text(GOOD, extra=1)),
    "duplicate key": (b"5", changed()[:-2] + b',"amount":99.0}}'),
    "event null": (b"5", envelope_text(None)),  # type: ignore[arg-type]
    "event missing": (b"5", b'{"schema_version":1,"event_type":"transaction"}'),
    "schema_version 99": (b"5", envelope_text(GOOD, schema_version=99)),
    "schema_version as text": (b"5", envelope_text(GOOD, schema_version="1")),
    "schema_version 1.0": (b"5", envelope_text(GOOD, schema_version=1.0)),
    "schema_version true": (b"5", envelope_text(GOOD, schema_version=True)),
    "event_type of a login": (b"5", envelope_text(GOOD, event_type="login")),
    "currency of four letters": (b"5", changed(currency="EURO")),
    "currency not ASCII": (b"5", changed(currency="€UR")),
    "tx_type unknown": (b"5", changed(tx_type="gift")),
    "channel unknown": (b"5", changed(channel="fax")),
    "status unknown": (b"5", changed(status="maybe")),
    "label 2": (b"5", changed(label=2)),
    "label true": (b"5", changed(label=True)),
    "label null": (b"5", changed(label=None)),
    "scenario given": (b"5", changed(scenario="account_takeover")),
    "scenario a number": (b"5", changed(scenario=3)),
    "device_id empty": (b"5", changed(device_id="")),
    "country of three letters": (b"5", changed(country="DEU")),
    "counterparty with an escape": (b"5", changed(counterparty="caf\u00e9")),
    "counterparty with a quote": (b"5", changed(counterparty='say "hi"')),
    "counterparty with braces": (b"5", changed(counterparty="cp-{1}")),
    "key is another user": (b"6", changed()),
    "key missing": (None, changed()),
    "tombstone": (b"5", None),
    "not JSON": (b"5", b"{not json"),
    "not UTF-8": (b"5", b"\xff\xfe"),
    "empty": (b"5", b""),
    "a JSON array": (b"5", b"[1, 2]"),
    "two objects": (b"5", changed() + changed()),
    "pretty-printed (newlines)": (b"5", json.dumps(json.loads(changed()), indent=2).encode()),
    "spaces around": (b"5", b"  " + changed() + b" "),
    "NaN amount": (b"5", changed()[:-2].replace(b'"amount":12.5', b'"amount":NaN') + b"}}"),
}


def test_every_case_alone_agrees_with_the_models() -> None:
    for name, (key, value) in CASES.items():
        try:
            assert_agree(as_records([("transactions", key, value)]))
        except AssertionError as exc:
            raise AssertionError(f"{name}: {exc}") from None


def test_all_cases_in_one_batch_with_valid_records_between(
    generated: dict[str, pa.Table],
) -> None:
    pairs = generated_records(generated)
    mixed: list[tuple[str, bytes | None, bytes | None]] = []
    for n, (key, value) in enumerate(CASES.values()):
        mixed += pairs[n * 7 : n * 7 + 7]  # a parse error must not take its neighbours along
        mixed.append(("transactions", key, value))
    got = assert_agree(as_records(mixed))
    assert got.failed and got.transactions.num_rows


@pytest.mark.parametrize(
    ("topic", "event", "fields"),
    [
        (
            "logins",
            "login",
            {
                "event_id": 1,
                "user_id": 5,
                "ts": "2026-01-02T10:00:00Z",
                "ip": "10.0.0.1",
                "device_id": "dev-1",
                "country": "DE",
                "method": "otp",
                "success": True,
            },
        ),
        (
            "api-calls",
            "api_call",
            {
                "event_id": 1,
                "user_id": 5,
                "ts": "2026-01-02T10:00:00Z",
                "ip": "10.0.0.1",
                "endpoint": "/v1/cards",
                "status_code": 200,
                "latency_ms": 12.0,
            },
        ),
    ],
)
def test_logins_and_api_calls_agree_too(topic: str, event: str, fields: dict[str, Any]) -> None:
    def text(**change: Any) -> bytes:
        body = {"schema_version": 1, "event_type": event, "event": {**fields, **change}}
        return json.dumps(body).encode()

    variants = [
        text(),
        text(success="true"),
        text(success=None),
        text(method="carrier pigeon"),
        text(status_code=99),
        text(status_code=200.0),
        text(latency_ms=-1),
        text(endpoint="/v1/nowhere"),
        text(ip="::1"),
    ]
    assert_agree(as_records([(topic, b"5", v) for v in variants]))


def test_the_same_transaction_twice_keeps_the_order_of_the_records() -> None:
    first, second = changed(amount=1.0), changed(amount=2.0)
    got = assert_agree(as_records([("transactions", b"5", first), ("transactions", b"5", second)]))
    assert got.transactions["amount"].to_pylist() == [1.0, 2.0]
    assert got.transactions.schema == RAW_TRANSACTION_SCHEMA
