"""The four behavioural personas, named in poker terms.

Loose / tight: how often and how widely a user transacts — frequency, variety of transaction
types, counterparties, devices, IPs and hours. Passive / aggressive: how large and how risky —
amount level and spread, share of withdrawals and transfers. Every number below is a default a
data scientist may change; docs/generator.md explains each one.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

STATUS_SHARE = (0.97, 0.02, 0.01)

# Amount multiplier per transaction type, applied to the user's typical amount.
TYPE_AMOUNT_FACTOR = {
    "payment": 1.0,
    "purchase": 0.8,
    "transfer": 2.0,
    "withdrawal": 1.5,
    "deposit": 1.5,
    "bill": 1.0,
}


@dataclass(frozen=True)
class Persona:
    """One behavioural profile: the parameters users of this persona are drawn around."""

    name: str
    activity: float  # relative transaction frequency; a user's share of the volume
    type_share: tuple[float, ...]  # expected share of each of contract.events.TX_TYPES
    type_variety_sigma: float  # per-user spread of type shares: high = few types per user
    counterparties: tuple[int, int]  # range of distinct counterparties per user
    devices: tuple[int, int]  # range of devices per user
    ips: tuple[int, int]  # range of home IP addresses per user
    hour_spread: float  # std-dev in hours around the user's preferred hour
    travel_share: float  # share of trip periods (events.TRIP_DAYS days) spent in another country
    amount_median: float  # typical amount in the user's currency
    amount_sigma: float  # spread of log(amount) within a user

    @property
    def is_loose(self) -> bool:
        return self.name.startswith("loose")

    @property
    def is_passive(self) -> bool:
        return self.name.endswith("passive")


_PASSIVE_TYPES = (0.30, 0.35, 0.08, 0.07, 0.10, 0.10)
_AGGRESSIVE_TYPES = (0.15, 0.15, 0.28, 0.27, 0.10, 0.05)

PERSONAS: tuple[Persona, ...] = (
    Persona(
        name="loose-passive",
        activity=2.0,
        type_share=_PASSIVE_TYPES,
        type_variety_sigma=0.3,
        counterparties=(20, 80),
        devices=(2, 4),
        ips=(3, 8),
        hour_spread=4.5,
        travel_share=0.04,
        amount_median=35.0,
        amount_sigma=0.6,
    ),
    Persona(
        name="tight-passive",
        activity=0.5,
        type_share=_PASSIVE_TYPES,
        type_variety_sigma=1.5,
        counterparties=(3, 10),
        devices=(1, 1),
        ips=(1, 2),
        hour_spread=1.5,
        travel_share=0.005,
        amount_median=30.0,
        amount_sigma=0.5,
    ),
    Persona(
        name="loose-aggressive",
        activity=2.0,
        type_share=_AGGRESSIVE_TYPES,
        type_variety_sigma=0.3,
        counterparties=(20, 80),
        devices=(2, 4),
        ips=(3, 8),
        hour_spread=4.5,
        travel_share=0.06,
        amount_median=220.0,
        amount_sigma=1.1,
    ),
    Persona(
        name="tight-aggressive",
        activity=0.5,
        type_share=_AGGRESSIVE_TYPES,
        type_variety_sigma=1.5,
        counterparties=(3, 10),
        devices=(1, 2),
        ips=(1, 2),
        hour_spread=1.5,
        travel_share=0.01,
        amount_median=250.0,
        amount_sigma=1.0,
    ),
)
PERSONA_NAMES = tuple(p.name for p in PERSONAS)


def persona_table() -> dict[str, np.ndarray]:
    """Persona parameters as arrays indexed by persona number, for vectorised lookups."""
    return {
        "activity": np.array([p.activity for p in PERSONAS]),
        "type_share": np.array([p.type_share for p in PERSONAS]),
        "type_variety_sigma": np.array([p.type_variety_sigma for p in PERSONAS]),
        "cp_low": np.array([p.counterparties[0] for p in PERSONAS]),
        "cp_high": np.array([p.counterparties[1] for p in PERSONAS]),
        "dev_low": np.array([p.devices[0] for p in PERSONAS]),
        "dev_high": np.array([p.devices[1] for p in PERSONAS]),
        "ip_low": np.array([p.ips[0] for p in PERSONAS]),
        "ip_high": np.array([p.ips[1] for p in PERSONAS]),
        "hour_spread": np.array([p.hour_spread for p in PERSONAS]),
        "travel_share": np.array([p.travel_share for p in PERSONAS]),
        "amount_mu": np.log(np.array([p.amount_median for p in PERSONAS])),
        "amount_sigma": np.array([p.amount_sigma for p in PERSONAS]),
    }


# Countries users live in (ISO 3166 alpha-2), their weight among users, and their currency.
COUNTRIES = (
    ("GB", 0.22, "GBP"),
    ("DE", 0.14, "EUR"),
    ("FR", 0.12, "EUR"),
    ("US", 0.12, "USD"),
    ("NL", 0.06, "EUR"),
    ("ES", 0.06, "EUR"),
    ("IT", 0.06, "EUR"),
    ("IE", 0.04, "EUR"),
    ("PL", 0.04, "PLN"),
    ("SE", 0.03, "SEK"),
    ("CH", 0.03, "CHF"),
    ("CA", 0.03, "CAD"),
    ("AU", 0.02, "AUD"),
    ("JP", 0.01, "JPY"),
    ("SG", 0.01, "SGD"),
    ("BR", 0.01, "BRL"),
)
# Countries that appear only as the origin of attacks and impossible travel.
FAR_COUNTRIES = ("NG", "RU", "VN", "BR", "ID", "PH", "KZ", "MX")
ALL_COUNTRIES = tuple(dict.fromkeys([c for c, _, _ in COUNTRIES] + list(FAR_COUNTRIES)))
