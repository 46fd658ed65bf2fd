"""Which fields of fraudwatch's contracts are personal data, of what kind, and how a reader
without the right to see them in full gets them masked (issue 20).

This is the one machine-readable classification. docs/privacy.md is its human side (where each
copy lives, why it is kept, who may see it, for how long), and
tests/unit/core/test_privacy_inventory.py fails when the raw, scored or event contract, an
Elasticsearch index template or the audit entry gains a field that is not classified here, or
when docs/privacy.md does not mention a classified field.

Every layer may read this module (it imports nothing from fraudwatch): the intervention
service masks its responses by role with :func:`mask_value`, and a publisher of dashboard
outputs can apply the same rules.

Masking rules:
- `shown`: every role that may read the record sees the value as stored.
- `network_prefix`: an IP address becomes its network — IPv4 /24 (`203.0.113.7` →
  `203.0.113.0/24`), IPv6 /48. Anything that is not an IP address is redacted.
- `keyed_hash`: a pseudonym, the first 16 hex digits of HMAC-SHA256 under the deployment's
  pseudonym key (`pn_…`). The same value gives the same pseudonym, so a viewer can still see
  that two transactions came from one device, but cannot recover the value or compute the
  pseudonym of a value they guess without the key. Without a key the value is redacted: a
  plain hash of a device id or counterparty can be reversed by hashing candidates.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType
from typing import Any


class DataClass(StrEnum):
    """What kind of personal data a field holds."""

    IDENTIFIER = "identifier"
    NETWORK_IDENTIFIER = "network identifier"
    DEVICE_IDENTIFIER = "device identifier"
    LOCATION = "location"
    FINANCIAL = "financial"
    BEHAVIOURAL = "behavioural"
    FREE_TEXT = "free text"
    NOT_PERSONAL = "not personal"


class Masking(StrEnum):
    """How a field is shown to a reader who may not see personal data in full."""

    SHOWN = "shown"
    NETWORK_PREFIX = "network_prefix"
    KEYED_HASH = "keyed_hash"


@dataclass(frozen=True)
class PersonalField:
    name: str
    data_class: DataClass
    masking: Masking = Masking.SHOWN

    @property
    def personal(self) -> bool:
        return self.data_class is not DataClass.NOT_PERSONAL


#: What a masked value becomes when it cannot be masked any other way (no pseudonym key, not
#: an IP address).
REDACTED = "[redacted]"
#: The prefix of a keyed-hash pseudonym, and how many hex digits of the HMAC it keeps.
PSEUDONYM_PREFIX = "pn_"
PSEUDONYM_HEX_DIGITS = 16
IPV4_PREFIX = 24
IPV6_PREFIX = 48


def _fields(data_class: DataClass, names: str, masking: Masking = Masking.SHOWN) -> dict:
    return {n: PersonalField(n, data_class, masking) for n in names.split()}


_D = DataClass
#: Every field name of the contracts → its classification. One name means one thing wherever
#: it appears (raw Parquet, scored Parquet, Kafka events, Elasticsearch documents, API
#: responses, the audit entry).
FIELDS: Mapping[str, PersonalField] = MappingProxyType(
    {
        # who: the customer, the transaction or event, the other party, the staff member
        **_fields(_D.IDENTIFIER, "user_id tx_id event_id subject_id actor alert_id"),
        # an audit entry's keyed commitments of its personal fields: pseudonyms under the
        # customer's own key, which erasure deletes (then they name no one)
        **_fields(_D.IDENTIFIER, "commitments"),
        **_fields(_D.IDENTIFIER, "counterparty", Masking.KEYED_HASH),
        **_fields(_D.NETWORK_IDENTIFIER, "ip", Masking.NETWORK_PREFIX),
        **_fields(_D.DEVICE_IDENTIFIER, "device_id", Masking.KEYED_HASH),
        **_fields(_D.LOCATION, "country home_country"),
        # money: what the customer paid, received or usually moves
        **_fields(
            _D.FINANCIAL,
            "amount currency amount_mu amount_sigma amount_mean amount_max amount_std "
            "max_amount_to_median max_amount_vs_baseline near_threshold_count "
            "small_amount_share withdrawal_share transfer_share amount_change_point",
        ),
        # how the customer behaves: times, channels, habits, and what the models make of it
        **_fields(
            _D.BEHAVIOURAL,
            # events
            "ts hour tx_type channel status method success endpoint status_code latency_ms "
            # the simulated profile of a raw user
            "persona activity n_devices n_ips n_counterparties preferred_hour hour_spread "
            # user features (features/users.py), also under `features` in Elasticsearch
            "features tx_count gap_mean_s gap_min_s gap_max_s gap_cv velocity_max_1h "
            "night_share distinct_ips distinct_devices distinct_countries "
            "distinct_counterparties declined_share api_share fast_country_switches "
            "new_device_share failed_logins risky_change_point activity_change_point "
            "behaviour_change_point "
            "geo_velocity_max_log "
            "impossible_travel_count "
            # what the models say about the customer
            "rank ensemble_score iforest_score copod_score autoencoder_score lstm_score "
            "flagged reasons top_features label scenario",
        ),
        # written by people: an analyst's reason, the detail of an audit entry
        **_fields(_D.FREE_TEXT, "reason detail"),
        # the envelope, the run and the audit chain's own bookkeeping
        **_fields(
            _D.NOT_PERSONAL,
            "schema_version event_type event model_version scored_at record_type "
            "seq hash prev_hash role via action result subject_kind v erased",
        ),
    }
)


def classify(name: str) -> PersonalField | None:
    """The classification of a field name, or None when the inventory does not know it."""
    return FIELDS.get(name)


def masked_fields() -> dict[str, Masking]:
    """Field name → rule, for every field that is not shown as stored."""
    return {n: f.masking for n, f in FIELDS.items() if f.masking is not Masking.SHOWN}


def network_prefix(value: str) -> str:
    """The /24 (IPv4) or /48 (IPv6) network an address belongs to; REDACTED for anything
    that is not an IP address."""
    try:
        address = ipaddress.ip_address(value.strip())
    except ValueError:
        return REDACTED
    prefix = IPV4_PREFIX if address.version == 4 else IPV6_PREFIX
    return str(ipaddress.ip_network(f"{address}/{prefix}", strict=False))


def pseudonym(value: str, key: bytes, field: str) -> str:
    """The keyed-hash pseudonym of a value of `field` (the field name separates domains: a
    device id and a counterparty that happen to be equal get different pseudonyms)."""
    digest = hmac.new(key, f"{field}\x00{value}".encode(), hashlib.sha256).hexdigest()
    return PSEUDONYM_PREFIX + digest[:PSEUDONYM_HEX_DIGITS]


def mask_value(name: str, value: Any, key: bytes | None) -> Any:
    """A value of field `name` as a reader without the right to see it in full gets it.
    None stays None; an unclassified or `shown` field is returned as it is."""
    field = FIELDS.get(name)
    if value is None or field is None or field.masking is Masking.SHOWN:
        return value
    if field.masking is Masking.NETWORK_PREFIX:
        return network_prefix(str(value))
    if not key:
        return REDACTED
    return pseudonym(str(value), key, name)
