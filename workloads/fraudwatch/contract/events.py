"""The raw events' contract: the vocabulary of each categorical field and the Arrow schema of
each raw table (transactions, logins, API calls), as written to the raw data set and as the
streaming events carry them (streaming/schemas.py). The generator writes to it, landing and
the stream validate against it, the features read it: none of them owns it."""

from __future__ import annotations

import pyarrow as pa

#: Prefix of the Kafka topics the events travel on (`<prefix>transactions`, ... and the
#: dead-letter topic; the names are in streaming/schemas.py); every command takes another.
DEFAULT_TOPIC_PREFIX = "fraudwatch."
#: The largest id of a user, transaction or event: every id is an int64 in the raw schemas.
MAX_ID = 2**63 - 1
TX_TYPES = ("payment", "purchase", "transfer", "withdrawal", "deposit", "bill")
CHANNELS = ("web", "mobile", "api", "atm", "branch")
STATUSES = ("completed", "declined", "pending")
LOGIN_METHODS = ("password", "otp", "biometric")
API_ENDPOINTS = (
    "/v1/balance",
    "/v1/transactions",
    "/v1/payments",
    "/v1/transfers",
    "/v1/profile",
    "/v1/cards",
)
TIMESTAMP = pa.timestamp("us", tz="UTC")
CATEGORY = pa.dictionary(pa.int32(), pa.string())  # low-cardinality strings

TRANSACTION_SCHEMA = pa.schema(
    [
        ("tx_id", pa.int64()),
        ("user_id", pa.int64()),
        ("ts", TIMESTAMP),
        ("amount", pa.float64()),
        ("currency", CATEGORY),
        ("tx_type", CATEGORY),
        ("channel", CATEGORY),
        ("ip", pa.string()),
        ("device_id", pa.string()),
        ("country", CATEGORY),
        ("counterparty", pa.string()),
        ("status", CATEGORY),
        ("label", pa.int8()),
        ("scenario", CATEGORY),
    ]
)
LOGIN_SCHEMA = pa.schema(
    [
        ("event_id", pa.int64()),
        ("user_id", pa.int64()),
        ("ts", TIMESTAMP),
        ("ip", pa.string()),
        ("device_id", pa.string()),
        ("country", CATEGORY),
        ("method", CATEGORY),
        ("success", pa.bool_()),
        ("label", pa.int8()),
        ("scenario", CATEGORY),
    ]
)
API_CALL_SCHEMA = pa.schema(
    [
        ("event_id", pa.int64()),
        ("user_id", pa.int64()),
        ("ts", TIMESTAMP),
        ("ip", pa.string()),
        ("endpoint", CATEGORY),
        ("status_code", pa.int32()),
        ("latency_ms", pa.float64()),
        ("label", pa.int8()),
        ("scenario", CATEGORY),
    ]
)
