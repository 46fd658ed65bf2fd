"""The population: who the users are, who is a victim of which scenario, and how many
transactions, logins and API calls each one makes.

Everything here is computed for all users at once from counter-based hashes (cheap: a few
arrays of N numbers), so any chunk of users can later be expanded into rows independently.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime

import numpy as np

from fraudwatch.contract.events import TX_TYPES
from fraudwatch.errors import UserError
from fraudwatch.generator import randomness as rnd
from fraudwatch.generator.personas import COUNTRIES, PERSONAS, persona_table
from fraudwatch.generator.scenarios import SCENARIOS, mean_tx_per_victim

MIN_VICTIMS_PER_SCENARIO = 3  # every scenario shows up, even in a demo-sized data set
FLOOR_MAX_RATE = 0.005  # ... unless that floor would make more than 0.5 % of rows anomalous


@dataclass(frozen=True)
class GeneratorConfig:
    """What to generate. Identical config (seed included) gives identical data."""

    users: int = 1_000_000
    transactions: int = 10_000_000
    seed: int = 42
    start: date = date(2026, 1, 1)
    days: int = 30
    fraud_rate: float = 0.001  # share of transactions that belong to an anomaly scenario
    logins_per_transaction: float = 0.3
    api_calls_per_transaction: float = 0.5
    scenario_weights: dict[str, float] = field(
        default_factory=lambda: {s.name: 1.0 for s in SCENARIOS}
    )

    def __post_init__(self) -> None:
        checks = [
            (self.users >= 4, "users", "must be at least 4 (one per persona)"),
            (self.transactions >= self.users, "transactions", "must be at least --users"),
            (self.days >= 1, "days", "must be at least 1"),
            (0.0 <= self.fraud_rate <= 0.2, "fraud-rate", "must be between 0 and 0.2"),
            (self.seed >= 0, "seed", "must be a non-negative integer"),
        ]
        for ok, key, fix in checks:
            if not ok:
                raise UserError(f"--{key} {getattr(self, key.replace('-', '_'))!r} {fix}")
        unknown = set(self.scenario_weights) - {s.name for s in SCENARIOS}
        if unknown:
            raise UserError(
                f"unknown scenario {sorted(unknown)}; known: {[s.name for s in SCENARIOS]}"
            )

    @property
    def start_epoch(self) -> int:
        return int(
            datetime(self.start.year, self.start.month, self.start.day, tzinfo=UTC).timestamp()
        )

    @property
    def period_seconds(self) -> int:
        return self.days * 86_400

    def as_json(self) -> dict:
        out = asdict(self)
        out["start"] = self.start.isoformat()
        return out


@dataclass
class Population:
    """Per-user arrays (index i is user_id i + 1) and the row offsets of each user."""

    config: GeneratorConfig
    user_id: np.ndarray
    persona: np.ndarray  # index into PERSONAS
    country: np.ndarray  # index into COUNTRIES
    activity: np.ndarray
    amount_mu: np.ndarray
    amount_sigma: np.ndarray
    n_devices: np.ndarray
    n_ips: np.ndarray
    n_counterparties: np.ndarray
    preferred_hour: np.ndarray
    hour_spread: np.ndarray
    travel_share: np.ndarray
    scenario: np.ndarray  # index into SCENARIOS, -1 for normal users
    normal_tx: np.ndarray
    fraud_tx: np.ndarray
    tx_offset: np.ndarray  # first tx_id - 1 of each user
    logins: np.ndarray
    login_offset: np.ndarray
    api_calls: np.ndarray
    api_offset: np.ndarray

    @property
    def size(self) -> int:
        return len(self.user_id)

    def type_cumulative(self, first: int, last: int) -> np.ndarray:
        """Cumulative shares of each transaction type (users first..last-1 x len(TX_TYPES)):
        the persona's shares, spread per user. Six numbers per user, so they are computed for
        a chunk of users when it is generated (in the worker), not for everyone up front."""
        seed, uid, persona = self.config.seed, self.user_id[first:last], self.persona[first:last]
        table = persona_table()
        noise = rnd.normal(seed, "user/types", uid[:, None], np.arange(len(TX_TYPES))[None, :])
        shares = table["type_share"][persona] * np.exp(
            table["type_variety_sigma"][persona][:, None] * noise
        )
        cumulative = np.cumsum(shares / shares.sum(axis=1, keepdims=True), axis=1)
        cumulative[:, -1] = 1.0
        return cumulative


def _largest_remainder(total: int, weights: np.ndarray) -> np.ndarray:
    """Integer counts proportional to weights that add up to exactly `total`."""
    if total <= 0 or weights.sum() <= 0:
        return np.zeros(len(weights), dtype=np.int64)
    exact = weights / weights.sum() * total
    counts = np.floor(exact).astype(np.int64)
    short = total - int(counts.sum())
    if short:
        # Ties broken by index (as a stable sort would) so the result is deterministic.
        counts[_smallest(-(exact - counts), short)] += 1
    return counts


def build_population(config: GeneratorConfig) -> Population:
    seed, n = config.seed, config.users
    uid = np.arange(1, n + 1, dtype=np.int64)
    table = persona_table()
    persona = (uid - 1) % len(PERSONAS)  # exactly N/4 users per persona

    weights = np.array([w for _, w, _ in COUNTRIES])
    country = rnd.choice(seed, "user/country", np.cumsum(weights / weights.sum()), uid)
    activity = table["activity"][persona] * np.exp(0.5 * rnd.normal(seed, "user/activity", uid))
    amount_mu = table["amount_mu"][persona] + 0.3 * rnd.normal(seed, "user/amount", uid)

    def between(name: str, low: np.ndarray, high: np.ndarray) -> np.ndarray:
        return rnd.integers(seed, f"user/{name}", 0, high - low + 1, uid) + low

    n_devices = between("devices", table["dev_low"][persona], table["dev_high"][persona])
    n_ips = between("ips", table["ip_low"][persona], table["ip_high"][persona])
    n_cp = between("counterparties", table["cp_low"][persona], table["cp_high"][persona])
    preferred_hour = np.mod(np.round(14 + 4 * rnd.normal(seed, "user/hour", uid)), 24).astype(
        np.int64
    )

    scenario, fraud_tx = _assign_scenarios(config, uid, persona)
    normal_tx = _largest_remainder(config.transactions - int(fraud_tx.sum()), activity)
    total_tx = normal_tx + fraud_tx
    logins = np.ceil(normal_tx * config.logins_per_transaction).astype(np.int64)
    logins += np.where(scenario == _scenario_index("account_takeover"), 6, 0)
    api_calls = np.ceil(total_tx * config.api_calls_per_transaction).astype(np.int64)

    def offsets(counts: np.ndarray) -> np.ndarray:
        return np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)

    return Population(
        config=config,
        user_id=uid,
        persona=persona,
        country=country,
        activity=activity,
        amount_mu=amount_mu,
        amount_sigma=table["amount_sigma"][persona],
        n_devices=n_devices,
        n_ips=n_ips,
        n_counterparties=n_cp,
        preferred_hour=preferred_hour,
        hour_spread=table["hour_spread"][persona],
        travel_share=table["travel_share"][persona],
        scenario=scenario,
        normal_tx=normal_tx,
        fraud_tx=fraud_tx,
        tx_offset=offsets(total_tx),
        logins=logins,
        login_offset=offsets(logins),
        api_calls=api_calls,
        api_offset=offsets(api_calls),
    )


def _scenario_index(name: str) -> int:
    return next(i for i, s in enumerate(SCENARIOS) if s.name == name)


def victims_per_scenario(config: GeneratorConfig) -> np.ndarray:
    """How many victims each scenario gets (in SCENARIOS order): about `fraud_rate` of all
    transactions shared by `scenario_weights`, and at least a floor per scenario with a
    non-zero weight (`MIN_VICTIMS_PER_SCENARIO`, lowered when it would push the anomalous share
    past `FLOOR_MAX_RATE`), so that small data sets still show every scenario. Exact counts,
    computed for the whole population: independent of chunks and workers."""
    weights = np.array([config.scenario_weights.get(s.name, 0.0) for s in SCENARIOS])
    if config.fraud_rate == 0 or weights.sum() == 0:
        return np.zeros(len(SCENARIOS), dtype=np.int64)
    means = np.array([(s.tx_count[0] + s.tx_count[1]) / 2 for s in SCENARIOS])
    budget = config.fraud_rate * config.transactions  # anomalous transactions wanted
    counts = _largest_remainder(round(budget / mean_tx_per_victim(weights)), weights)
    active = weights > 0
    allowance = max(budget, FLOOR_MAX_RATE * config.transactions)
    floor = min(MIN_VICTIMS_PER_SCENARIO, int(allowance // means[active].sum()))
    counts = np.where(active, np.maximum(counts, floor), 0)
    # At most half the users are victims (persona drift only among the passive half).
    cap = config.users // 2
    if counts.sum() > cap:
        counts = _largest_remainder(cap, counts.astype(np.float64))
    return counts


def _smallest(key: np.ndarray, count: int) -> np.ndarray:
    """Positions of the `count` smallest keys, ties to the lower position: the same set as
    `np.argsort(key, kind="stable")[:count]`, in linear time rather than a full sort."""
    if count >= len(key):
        return np.arange(len(key))
    kth = np.partition(key, count - 1)[count - 1]
    below = np.flatnonzero(key < kth)
    return np.concatenate([below, np.flatnonzero(key == kth)[: count - len(below)]])


def _assign_scenarios(
    config: GeneratorConfig, uid: np.ndarray, persona: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Pick each scenario's victims (`victims_per_scenario`) among the users it can happen to:
    the eligible users not yet picked with the smallest hash keyed by (seed, scenario, user)."""
    seed = config.seed
    counts = victims_per_scenario(config)
    scenario = np.full(len(uid), -1, dtype=np.int64)
    fraud_tx = np.zeros(len(uid), dtype=np.int64)
    if counts.sum() == 0:
        return scenario, fraud_tx
    passive = np.array([p.is_passive for p in PERSONAS])[persona]
    # Scenarios restricted to passive users pick first, so the others cannot crowd them out.
    order = sorted(range(len(SCENARIOS)), key=lambda i: not SCENARIOS[i].passive_only)
    for number in order:
        wanted = int(counts[number])
        if wanted == 0:
            continue
        candidates = np.flatnonzero(
            (scenario < 0) & (passive if SCENARIOS[number].passive_only else True)
        )
        key = rnd.uniform(seed, "victim/" + SCENARIOS[number].name, uid[candidates])
        picked = candidates[_smallest(key, wanted)]
        scenario[picked] = number
    victim = scenario >= 0
    picked_scenario = np.where(victim, scenario, 0)
    low = np.array([s.tx_count[0] for s in SCENARIOS])[picked_scenario]
    high = np.array([s.tx_count[1] for s in SCENARIOS])[picked_scenario]
    count = rnd.integers(seed, "victim/count", 0, high - low + 1, uid) + low
    fraud_tx[victim] = count[victim]
    return scenario, fraud_tx
