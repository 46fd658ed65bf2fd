"""Anomaly scenarios injected with ground truth (label 1 + scenario name).

Each scenario turns one victim user into an incident of a few transactions. The functions get
one row per incident transaction (`IncidentRows`) and return the columns of those rows; all
randomness is keyed by (user_id, position in the incident), see randomness.py.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from fraudwatch.contract.events import TX_TYPES
from fraudwatch.contract.regulatory import reporting_threshold, reporting_thresholds
from fraudwatch.generator import randomness as rnd
from fraudwatch.generator.personas import ALL_COUNTRIES, COUNTRIES, FAR_COUNTRIES

FAR_COUNTRY_INDEX = np.array([ALL_COUNTRIES.index(c) for c in FAR_COUNTRIES])
_T = {name: i for i, name in enumerate(TX_TYPES)}
_CHANNEL = {"web": 0, "mobile": 1, "api": 2, "atm": 3, "branch": 4}


@dataclass
class IncidentRows:
    """One row per injected transaction, with the victim's profile repeated on each row."""

    seed: int
    user_id: np.ndarray
    position: np.ndarray  # 0..size-1 within the incident
    size: np.ndarray  # number of transactions in the incident
    amount_mu: np.ndarray
    home_country: np.ndarray
    n_devices: np.ndarray
    n_ips: np.ndarray
    period_start: int
    period_seconds: int

    def u(self, name: str, per_incident: bool = False) -> np.ndarray:
        keys = (self.user_id,) if per_incident else (self.user_id, self.position)
        return rnd.uniform(self.seed, "scenario/" + name, *keys)

    def anchor(self, low: float, high: float) -> np.ndarray:
        """Incident start, as a fraction [low, high) of the period, one per incident."""
        return incident_start(
            self.seed, self.user_id, low, high, self.period_start, self.period_seconds
        )

    def own_device(self) -> np.ndarray:
        return own_device(
            self.user_id,
            rnd.integers(self.seed, "scenario/dev", 0, self.n_devices, self.user_id, self.position),
        )

    def own_ip(self) -> np.ndarray:
        return own_ip(
            self.seed,
            self.user_id,
            rnd.integers(self.seed, "scenario/ip", 0, self.n_ips, self.user_id, self.position),
        )

    def new_device(self) -> np.ndarray:
        return foreign_device(self.seed, "scenario/new-device", self.user_id)

    def new_ip(self) -> np.ndarray:
        return foreign_ip(self.seed, "scenario/new-ip", self.user_id)

    def far_country(self, per_incident: bool = True) -> np.ndarray:
        return FAR_COUNTRY_INDEX[
            np.floor(self.u("far", per_incident) * len(FAR_COUNTRY_INDEX)).astype(np.int64)
        ]

    def typical_amount(self) -> np.ndarray:
        return np.exp(self.amount_mu)

    def reporting_threshold(self) -> np.ndarray:
        """The reporting threshold of each victim's currency (fraudwatch.contract.regulatory)."""
        return threshold_by_country()[self.home_country]


def threshold_by_country() -> np.ndarray:
    """Reporting threshold of the currency of each country in ALL_COUNTRIES (home countries
    use their currency; the others, never a home, get the `*` threshold)."""
    table = reporting_thresholds()
    currency = {code: cur for code, _, cur in COUNTRIES}
    return np.array([reporting_threshold(currency.get(c, "*"), table) for c in ALL_COUNTRIES])


TAKEOVER_WINDOW = (0.1, 0.95)
SCRIPTED_WINDOW = (0.05, 0.9)  # card testing and bots: their API calls line up with it


def incident_start(
    seed: int, user_id: np.ndarray, low: float, high: float, period_start: int, period_seconds: int
) -> np.ndarray:
    """When a victim's incident starts: keyed by the user alone, so that the logins and API
    calls generated for the same incident line up with its transactions."""
    u = rnd.uniform(seed, "scenario/anchor", user_id)
    return period_start + (low + (high - low) * u) * period_seconds


def own_device(user_id: np.ndarray, slot: np.ndarray) -> np.ndarray:
    return user_id * 16 + slot


def foreign_device(seed: int, stream: str, *keys) -> np.ndarray:
    return (1 << 40) + (rnd.hash64(seed, stream, *keys) >> np.uint64(24)).astype(np.int64)


def own_ip(
    seed: int, user_id: np.ndarray, slot: np.ndarray, user: np.ndarray | None = None
) -> np.ndarray:
    """The user's home IP number `slot`; with `user` (per row: an index into user_id) the same
    values, computed with the user's part of the hash once per user (randomness.Rows)."""
    if user is None:
        return _as_ip(rnd.hash64(seed, "ip/home", user_id, slot))
    return _as_ip(rnd.Rows(seed, user_id, user, slot).hash64("ip/home"))


def foreign_ip(seed: int, stream: str, *keys) -> np.ndarray:
    return _as_ip(rnd.hash64(seed, stream, *keys))


def _as_ip(h: np.ndarray) -> np.ndarray:
    """A public-looking IPv4 address as an integer (first octet 11..210)."""
    first = (h % np.uint64(200)).astype(np.int64) + 11
    return (first << 24) | ((h >> np.uint64(8)) & np.uint64(0xFFFFFF)).astype(np.int64)


def _columns(rows: IncidentRows, **columns) -> dict[str, np.ndarray]:
    n = len(rows.user_id)
    out = {k: np.broadcast_to(np.asarray(v), (n,)).copy() for k, v in columns.items()}
    out.setdefault("status", np.zeros(n, dtype=np.int64))
    out.setdefault(
        "counterparty",
        rnd.integers(rows.seed, "scenario/cp", 0, 2_000_000, rows.user_id, rows.position),
    )
    return out


def account_takeover(r: IncidentRows) -> dict[str, np.ndarray]:
    """New device, IP and country, then fast large transfers and withdrawals."""
    t0 = r.anchor(*TAKEOVER_WINDOW)
    ts = t0 + r.position * (60 + 540 * r.u("gap"))
    is_withdrawal = r.u("type") < 0.4
    return _columns(
        r,
        ts=ts,
        amount=r.typical_amount() * (5 + 15 * r.u("amount")),
        tx_type=np.where(is_withdrawal, _T["withdrawal"], _T["transfer"]),
        channel=np.where(r.u("channel") < 0.5, _CHANNEL["web"], _CHANNEL["mobile"]),
        device=r.new_device(),
        ip=r.new_ip(),
        country=r.far_country(),
    )


def card_testing(r: IncidentRows) -> dict[str, np.ndarray]:
    """Bursts of tiny payments to many merchants, many of them declined."""
    t0 = r.anchor(*SCRIPTED_WINDOW)
    return _columns(
        r,
        ts=t0 + r.position * (5 + 35 * r.u("gap")),
        amount=0.5 + 1.5 * r.u("amount"),
        tx_type=_T["purchase"],
        channel=np.where(r.u("channel") < 0.7, _CHANNEL["api"], _CHANNEL["web"]),
        device=r.new_device(),
        ip=r.new_ip(),
        country=r.far_country(),
        status=np.where(r.u("declined") < 0.4, 1, 0),
    )


def structuring(r: IncidentRows) -> dict[str, np.ndarray]:
    """Many transfers just under the reporting threshold over one to three days."""
    t0 = r.anchor(0.05, 0.85)
    return _columns(
        r,
        ts=t0 + r.position * (2 * 3600 + 6 * 3600 * r.u("gap")),
        amount=r.reporting_threshold() * (0.90 + 0.099 * r.u("amount")),
        tx_type=_T["transfer"],
        channel=np.where(r.u("channel") < 0.5, _CHANNEL["web"], _CHANNEL["mobile"]),
        device=r.own_device(),
        ip=r.own_ip(),
        country=r.home_country,
        counterparty=1_000_000
        + rnd.integers(r.seed, "scenario/mule", 0, 3, r.user_id, r.position)
        + (r.user_id % 997) * 3,
    )


def dormant_reactivation(r: IncidentRows) -> dict[str, np.ndarray]:
    """A user silent for half the period suddenly makes large withdrawals.

    The victim's normal history is squeezed into the first half of the period by the
    transaction generator (see `squeezes_history`)."""
    t0 = r.anchor(0.90, 0.98)
    return _columns(
        r,
        ts=t0 + r.position * (120 + 1080 * r.u("gap")),
        amount=r.typical_amount() * (8 + 17 * r.u("amount")),
        tx_type=_T["withdrawal"],
        channel=np.where(r.u("channel") < 0.6, _CHANNEL["atm"], _CHANNEL["web"]),
        device=r.new_device(),
        ip=r.new_ip(),
        country=r.home_country,
    )


def impossible_travel(r: IncidentRows) -> dict[str, np.ndarray]:
    """Card-present transactions in two far-apart countries minutes apart."""
    t0 = r.anchor(0.05, 0.95)
    first_index = np.floor(r.u("far", True) * len(FAR_COUNTRY_INDEX)).astype(np.int64)
    first, second = (
        FAR_COUNTRY_INDEX[first_index],
        FAR_COUNTRY_INDEX[(first_index + 3) % len(FAR_COUNTRY_INDEX)],
    )
    return _columns(
        r,
        ts=t0 + r.position * (300 + 2100 * r.u("gap")),
        amount=r.typical_amount() * (1 + 3 * r.u("amount")),
        tx_type=np.where(r.u("type") < 0.5, _T["purchase"], _T["withdrawal"]),
        channel=np.where(r.u("channel") < 0.5, _CHANNEL["atm"], _CHANNEL["branch"]),
        device=r.new_device(),
        ip=foreign_ip(r.seed, "scenario/travel-ip", r.user_id, r.position),
        country=np.where(r.position % 2 == 0, first, second),
    )


def persona_drift(r: IncidentRows) -> dict[str, np.ndarray]:
    """A passive user turns aggressive: large transfers and withdrawals late in the period."""
    return _columns(
        r,
        ts=r.period_start + (0.75 + 0.24 * r.u("when")) * r.period_seconds,
        amount=250.0
        * 2.0
        * np.exp(1.0 * rnd.normal(r.seed, "scenario/drift", r.user_id, r.position)),
        tx_type=np.where(r.u("type") < 0.5, _T["transfer"], _T["withdrawal"]),
        channel=np.where(r.u("channel") < 0.5, _CHANNEL["web"], _CHANNEL["mobile"]),
        device=r.own_device(),
        ip=r.own_ip(),
        country=r.home_country,
    )


def bot_intervals(r: IncidentRows) -> dict[str, np.ndarray]:
    """A script pays the same amount to the same counterparty at machine-regular intervals."""
    t0 = r.anchor(*SCRIPTED_WINDOW)
    interval = 30 + 270 * r.u("interval", True)
    return _columns(
        r,
        ts=t0 + r.position * interval + (r.u("jitter") - 0.5),
        amount=np.round(r.typical_amount(), 0) + 1,
        tx_type=_T["payment"],
        channel=_CHANNEL["api"],
        device=r.new_device(),
        ip=r.new_ip(),
        country=r.home_country,
        counterparty=rnd.integers(r.seed, "scenario/bot-cp", 0, 2_000_000, r.user_id),
    )


@dataclass(frozen=True)
class Scenario:
    name: str
    tx_count: tuple[int, int]  # transactions per incident, inclusive range
    build: Callable[[IncidentRows], dict[str, np.ndarray]]
    passive_only: bool = False
    squeezes_history: bool = False  # the victim's normal history moves to the first half

    @property
    def description(self) -> str:
        return (self.build.__doc__ or "").strip().splitlines()[0]


SCENARIOS: tuple[Scenario, ...] = (
    Scenario("account_takeover", (3, 8), account_takeover),
    Scenario("card_testing", (10, 30), card_testing),
    Scenario("structuring", (5, 12), structuring),
    Scenario("dormant_reactivation", (3, 6), dormant_reactivation, squeezes_history=True),
    Scenario("impossible_travel", (2, 4), impossible_travel),
    Scenario("persona_drift", (10, 20), persona_drift, passive_only=True),
    Scenario("bot_intervals", (20, 50), bot_intervals),
)
SCENARIO_NAMES = tuple(s.name for s in SCENARIOS)


def mean_tx_per_victim(weights: np.ndarray) -> float:
    means = np.array([(s.tx_count[0] + s.tx_count[1]) / 2 for s in SCENARIOS])
    return float((means * weights).sum() / weights.sum())
