"""The versioned JSON schema of each Kafka topic's events, and validation against it.

Every record value is an envelope `{"schema_version": 1, "event_type": "...", "event": {...}}`.
The pydantic models below are the single definition; the JSON Schema documents under
`streaming/json-schemas/` are generated from them for other producers and consumers
(`python -m fraudwatch.streaming.schemas` regenerates them; a test fails when they are stale).
A new incompatible version adds a model and a `(topic, version)` entry; old versions stay
readable until their producers are gone.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from ipaddress import ip_address
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from fraudwatch.contract.events import (
    API_ENDPOINTS,
    CHANNELS,
    LOGIN_METHODS,
    MAX_ID,
    STATUSES,
    TX_TYPES,
)

#: Topic names without the prefix; the generator's table of each.
TOPICS = {"transactions": "transactions", "logins": "logins", "api-calls": "api_calls"}
DEAD_LETTER = "dead-letter"
SCHEMA_DIR = Path(__file__).with_name("json-schemas")

TxType = Literal[TX_TYPES]  # type: ignore[valid-type]
Channel = Literal[CHANNELS]  # type: ignore[valid-type]
Status = Literal[STATUSES]  # type: ignore[valid-type]
LoginMethod = Literal[LOGIN_METHODS]  # type: ignore[valid-type]
Endpoint = Literal[API_ENDPOINTS]  # type: ignore[valid-type]


class _Event(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    user_id: int = Field(
        ge=0, le=MAX_ID, description="The account the event belongs to (the record key)"
    )
    ts: datetime = Field(description="When it happened, ISO 8601 with a UTC offset")
    label: Literal[0, 1] | None = Field(
        None, description="Ground truth; only generated data carries it"
    )
    scenario: str | None = Field(None, description="Anomaly scenario name (generated data only)")

    @field_validator("ts")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("timestamp needs a UTC offset, e.g. 2026-01-01T12:00:00Z")
        try:
            value.astimezone(UTC)
        except OverflowError:
            raise ValueError("timestamp is out of range once converted to UTC") from None
        return value


def _ip(value: str) -> str:
    ip_address(value)  # raises ValueError with the offending text
    return value


class TransactionV1(_Event):
    tx_id: int = Field(ge=0, le=MAX_ID)
    amount: float = Field(ge=0)
    currency: str = Field(min_length=3, max_length=3)
    tx_type: TxType
    channel: Channel
    ip: str
    device_id: str = Field(min_length=1)
    country: str = Field(min_length=2, max_length=2)
    counterparty: str = Field(min_length=1)
    status: Status

    _check_ip = field_validator("ip")(classmethod(lambda cls, v: _ip(v)))


class LoginV1(_Event):
    event_id: int = Field(ge=0, le=MAX_ID)
    ip: str
    device_id: str = Field(min_length=1)
    country: str = Field(min_length=2, max_length=2)
    method: LoginMethod
    success: bool

    _check_ip = field_validator("ip")(classmethod(lambda cls, v: _ip(v)))


class ApiCallV1(_Event):
    event_id: int = Field(ge=0, le=MAX_ID)
    ip: str
    endpoint: Endpoint
    status_code: int = Field(ge=100, le=599)
    latency_ms: float = Field(ge=0)

    _check_ip = field_validator("ip")(classmethod(lambda cls, v: _ip(v)))


class TransactionEnvelopeV1(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, title="fraudwatch.transactions v1")
    schema_version: Literal[1]
    event_type: Literal["transaction"]
    event: TransactionV1


class LoginEnvelopeV1(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, title="fraudwatch.logins v1")
    schema_version: Literal[1]
    event_type: Literal["login"]
    event: LoginV1


class ApiCallEnvelopeV1(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, title="fraudwatch.api-calls v1")
    schema_version: Literal[1]
    event_type: Literal["api_call"]
    event: ApiCallV1


#: (topic, schema_version) → envelope model. The newest version of a topic is what producers
#: write.
ENVELOPES: dict[tuple[str, int], type[BaseModel]] = {
    ("transactions", 1): TransactionEnvelopeV1,
    ("logins", 1): LoginEnvelopeV1,
    ("api-calls", 1): ApiCallEnvelopeV1,
}
EVENT_TYPES = {"transactions": "transaction", "logins": "login", "api-calls": "api_call"}


def current_version(topic: str) -> int:
    return max(v for t, v in ENVELOPES if t == topic)


def envelope(topic: str, event: dict[str, Any]) -> dict[str, Any]:
    """Wrap an event for `topic` in the current envelope (not validated: producers are ours)."""
    return {
        "schema_version": current_version(topic),
        "event_type": EVENT_TYPES[topic],
        "event": event,
    }


class InvalidEvent(ValueError):
    """A record that does not match its topic's schema; the message is the dead-letter reason."""


def validate(topic: str, value: bytes | None) -> dict[str, Any]:
    """The validated event of a record value on `topic` (a name without prefix), as JSON-ready
    Python values; InvalidEvent with a one-line reason otherwise."""
    if value is None:
        raise InvalidEvent("record has no value (a tombstone); producers must send an envelope")
    try:
        document = json.loads(value)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidEvent(f"value is not UTF-8 JSON: {exc}") from None
    if not isinstance(document, dict):
        raise InvalidEvent(f"value is JSON {type(document).__name__}, expected an object")
    version = document.get("schema_version")
    model = ENVELOPES.get((topic, version)) if isinstance(version, int) else None
    if model is None:
        known = sorted(v for t, v in ENVELOPES if t == topic)
        raise InvalidEvent(f"unknown schema_version {version!r} for topic {topic} (known: {known})")
    try:
        parsed = model.model_validate(document)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        more = f" (+{exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        raise InvalidEvent(f"{where}: {first['msg']}{more}") from None
    return dict(parsed.event.model_dump(mode="python"))  # type: ignore[attr-defined]


def json_schema(topic: str, version: int) -> dict[str, Any]:
    schema = ENVELOPES[(topic, version)].model_json_schema()
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"fraudwatch/{topic}/v{version}",
        "$comment": "Generated by `python -m fraudwatch.streaming.schemas`; do not edit.",
        **schema,
    }


def schema_files() -> dict[Path, str]:
    """Path → text of every generated JSON Schema document."""
    return {
        SCHEMA_DIR / f"{topic}.v{version}.json": json.dumps(
            json_schema(topic, version), indent=2, sort_keys=True
        )
        + "\n"
        for topic, version in ENVELOPES
    }


def write_schema_files() -> list[Path]:
    SCHEMA_DIR.mkdir(exist_ok=True)
    for path, text in schema_files().items():
        path.write_text(text, encoding="utf-8")
    return sorted(schema_files())


if __name__ == "__main__":
    for written in write_schema_files():
        print(written)
