"""Rows for a chunk of users: transactions, logins and API calls as Arrow tables.

A chunk is any contiguous range of users; the rows it yields do not depend on where the chunk
starts or ends (all randomness is keyed by user and position, see randomness.py).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from fraudwatch.contract.events import (
    API_CALL_SCHEMA,
    API_ENDPOINTS,
    CATEGORY,
    CHANNELS,
    LOGIN_METHODS,
    LOGIN_SCHEMA,
    STATUSES,
    TIMESTAMP,
    TRANSACTION_SCHEMA,
    TX_TYPES,
)
from fraudwatch.generator import randomness as rnd
from fraudwatch.generator.personas import (
    ALL_COUNTRIES,
    COUNTRIES,
    PERSONA_NAMES,
    STATUS_SHARE,
    TYPE_AMOUNT_FACTOR,
)
from fraudwatch.generator.population import Population
from fraudwatch.generator.scenarios import (
    FAR_COUNTRY_INDEX,
    SCENARIO_NAMES,
    SCENARIOS,
    SCRIPTED_WINDOW,
    TAKEOVER_WINDOW,
    IncidentRows,
    foreign_device,
    foreign_ip,
    incident_start,
    own_device,
    own_ip,
)

# Channel shares per transaction type (rows follow TX_TYPES, columns follow CHANNELS).
CHANNEL_BY_TYPE = np.array(
    [
        [0.40, 0.50, 0.10, 0.00, 0.00],  # payment
        [0.45, 0.50, 0.05, 0.00, 0.00],  # purchase
        [0.45, 0.45, 0.05, 0.00, 0.05],  # transfer
        [0.00, 0.00, 0.00, 0.85, 0.15],  # withdrawal
        [0.30, 0.40, 0.00, 0.00, 0.30],  # deposit
        [0.50, 0.40, 0.10, 0.00, 0.00],  # bill
    ]
)
TRIP_DAYS = 4  # a trip abroad lasts this many days (periods start with the data set)
USER_SCHEMA = pa.schema(
    [
        ("user_id", pa.int64()),
        ("persona", CATEGORY),
        ("home_country", CATEGORY),
        ("currency", CATEGORY),
        ("activity", pa.float64()),
        ("amount_mu", pa.float64()),
        ("amount_sigma", pa.float64()),
        ("n_devices", pa.int32()),
        ("n_ips", pa.int32()),
        ("n_counterparties", pa.int32()),
        ("preferred_hour", pa.int32()),
        ("hour_spread", pa.float64()),
        ("label", pa.int8()),
        ("scenario", CATEGORY),
    ]
)
_CURRENCY_OF_COUNTRY = [c for _, _, c in COUNTRIES]


def _expand(counts: np.ndarray, first: int) -> tuple[np.ndarray, np.ndarray]:
    """(global user index, position within user) for each row of a chunk."""
    idx = np.repeat(np.arange(first, first + len(counts)), counts)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    pos = np.arange(len(idx)) - np.repeat(starts, counts)
    return idx, pos


def _daytime(pop: Population, stream: str, idx: np.ndarray, pos: np.ndarray, squeeze: np.ndarray):
    """Epoch seconds around each user's preferred hour; squeezed users only in the first half."""
    cfg, uid = pop.config, pop.user_id[idx]
    days = np.where(squeeze, max(1, cfg.days // 2), cfg.days)
    day = rnd.integers(cfg.seed, stream + "/day", 0, days, uid, pos)
    hour = np.mod(
        pop.preferred_hour[idx]
        + np.round(pop.hour_spread[idx] * rnd.normal(cfg.seed, stream + "/hour", uid, pos)),
        24,
    )
    second = rnd.uniform(cfg.seed, stream + "/second", uid, pos) * 3600
    return cfg.start_epoch + day * 86_400 + hour * 3600 + second


def _squeezed(pop: Population, idx: np.ndarray) -> np.ndarray:
    flags = np.array([s.squeezes_history for s in SCENARIOS] + [False])
    return flags[pop.scenario[idx]]


def _ip_strings(ip: np.ndarray) -> pa.Array:
    parts = [pa.array((ip >> shift) & 0xFF).cast(pa.string()) for shift in (24, 16, 8, 0)]
    return pc.binary_join_element_wise(*parts, ".")


def _prefixed(prefix: str, numbers: np.ndarray) -> pa.Array:
    return pc.binary_join_element_wise(prefix, pa.array(numbers).cast(pa.string()), "")


def _take(names: tuple[str, ...] | list[str], index: np.ndarray) -> pa.Array:
    """A dictionary-encoded column: the indices are the data, the names a fixed dictionary."""
    return pa.DictionaryArray.from_arrays(
        pa.array(np.asarray(index, dtype=np.int32)), pa.array(list(names), pa.string())
    )


def _scenario_names(index: np.ndarray) -> pa.Array:
    index = np.asarray(index, dtype=np.int32)
    return pa.DictionaryArray.from_arrays(
        pa.array(index, mask=index < 0), pa.array(list(SCENARIO_NAMES), pa.string())
    )


def _clip_to_period(pop: Population, ts: np.ndarray) -> np.ndarray:
    start = pop.config.start_epoch
    return np.clip(ts, start, start + pop.config.period_seconds - 1e-3)


def _timestamps(ts: np.ndarray) -> pa.Array:
    return pa.array(np.round(ts * 1e6).astype(np.int64), pa.int64()).cast(TIMESTAMP)


def transactions(pop: Population, first: int, last: int) -> pa.Table:
    """All transactions of users with index first..last-1, sorted by user then time."""
    cfg, seed = pop.config, pop.config.seed
    idx, pos = _expand(pop.normal_tx[first:last], first)
    uid = pop.user_id[idx]
    ts = _daytime(pop, "tx", idx, pos, _squeezed(pop, idx))
    tx_type = rnd.choice(seed, "tx/type", pop.type_cumulative[idx], uid, pos)
    factor = np.array([TYPE_AMOUNT_FACTOR[t] for t in TX_TYPES])[tx_type]
    amount = np.exp(
        pop.amount_mu[idx] + pop.amount_sigma[idx] * rnd.normal(seed, "tx/amount", uid, pos)
    )
    channel = rnd.choice(seed, "tx/channel", np.cumsum(CHANNEL_BY_TYPE, axis=1)[tx_type], uid, pos)
    # Travel is by trips of TRIP_DAYS days: during a trip all of the user's transactions are
    # made from the same foreign country and hotel IP, so normal users do not hop between
    # countries within minutes or hours (the impossible_travel scenario's signature).
    trip = ((ts - cfg.start_epoch) // (TRIP_DAYS * 86_400)).astype(np.int64)
    travel = rnd.uniform(seed, "tx/travel", uid, trip) < pop.travel_share[idx]
    abroad = rnd.integers(seed, "tx/abroad", 0, len(COUNTRIES), uid, trip)
    home = pop.country[idx]
    columns = {
        "idx": idx,
        "ts": ts,
        "amount": amount * factor,
        "tx_type": tx_type,
        "channel": channel,
        "device": own_device(uid, rnd.integers(seed, "tx/device", 0, pop.n_devices[idx], uid, pos)),
        "ip": np.where(
            travel,
            foreign_ip(seed, "tx/travel-ip", uid, trip),
            own_ip(seed, uid, rnd.integers(seed, "tx/ip", 0, pop.n_ips[idx], uid, pos)),
        ),
        "country": np.where(travel & (abroad != home), abroad, home),
        "counterparty": (
            rnd.hash64(
                seed, "cp", uid, rnd.integers(seed, "tx/cp", 0, pop.n_counterparties[idx], uid, pos)
            )
            % np.uint64(2_000_000)
        ).astype(np.int64),
        "status": rnd.choice(seed, "tx/status", np.cumsum(STATUS_SHARE), uid, pos),
        "scenario": np.full(len(idx), -1),
    }
    parts = [columns]
    fraud = pop.fraud_tx[first:last]
    for number, scenario in enumerate(SCENARIOS):
        counts = np.where(pop.scenario[first:last] == number, fraud, 0)
        if counts.sum() == 0:
            continue
        fidx, fpos = _expand(counts, first)
        rows = IncidentRows(
            seed=seed,
            user_id=pop.user_id[fidx],
            position=fpos,
            size=np.repeat(counts[counts > 0], counts[counts > 0]),
            amount_mu=pop.amount_mu[fidx],
            home_country=pop.country[fidx],
            n_devices=pop.n_devices[fidx],
            n_ips=pop.n_ips[fidx],
            period_start=cfg.start_epoch,
            period_seconds=cfg.period_seconds,
        )
        built = scenario.build(rows)
        built["idx"] = fidx
        built["scenario"] = np.full(len(fidx), number)
        parts.append(built)
    merged = {k: np.concatenate([np.asarray(p[k]) for p in parts]) for k in columns}
    merged["ts"] = _clip_to_period(pop, merged["ts"])
    order = np.lexsort((merged["ts"], merged["idx"]))
    m = {k: v[order] for k, v in merged.items()}
    idx = m["idx"]
    totals = pop.normal_tx[first:last] + fraud
    _, rank = _expand(totals, first)
    tx_id = pop.tx_offset[idx] + rank + 1
    return pa.Table.from_arrays(
        [
            pa.array(tx_id),
            pa.array(pop.user_id[idx]),
            _timestamps(m["ts"]),
            pa.array(np.round(m["amount"], 2)),
            _take(_CURRENCY_OF_COUNTRY, pop.country[idx]),
            _take(TX_TYPES, m["tx_type"]),
            _take(CHANNELS, m["channel"]),
            _ip_strings(m["ip"]),
            _prefixed("dev-", m["device"]),
            _take(ALL_COUNTRIES, m["country"]),
            _prefixed("cp-", m["counterparty"]),
            _take(STATUSES, m["status"]),
            pa.array((m["scenario"] >= 0).astype(np.int8)),
            _scenario_names(m["scenario"]),
        ],
        schema=TRANSACTION_SCHEMA,
    )


_TAKEOVER = SCENARIO_NAMES.index("account_takeover")
_TAKEOVER_LOGINS = 6  # five failed attempts, then the attacker gets in


def logins(pop: Population, first: int, last: int) -> pa.Table:
    """Login attempts; account-takeover victims end with the attacker's failed tries and entry."""
    cfg, seed = pop.config, pop.config.seed
    idx, pos = _expand(pop.logins[first:last], first)
    uid = pop.user_id[idx]
    ts = _daytime(pop, "login", idx, pos, _squeezed(pop, idx))
    is_attack = (pop.scenario[idx] == _TAKEOVER) & (pos >= pop.logins[idx] - _TAKEOVER_LOGINS)
    attack_step = pos - (pop.logins[idx] - _TAKEOVER_LOGINS)
    start = incident_start(seed, uid, *TAKEOVER_WINDOW, cfg.start_epoch, cfg.period_seconds)
    ts = np.where(is_attack, start - (_TAKEOVER_LOGINS - attack_step) * 40.0, ts)
    far = FAR_COUNTRY_INDEX
    device = np.where(
        is_attack,
        foreign_device(seed, "scenario/new-device", uid),
        own_device(uid, rnd.integers(seed, "login/device", 0, pop.n_devices[idx], uid, pos)),
    )
    ip = np.where(
        is_attack,
        foreign_ip(seed, "scenario/new-ip", uid),
        own_ip(seed, uid, rnd.integers(seed, "login/ip", 0, pop.n_ips[idx], uid, pos)),
    )
    country = np.where(
        is_attack,
        far[np.floor(rnd.uniform(seed, "scenario/far", uid) * len(far)).astype(np.int64)],
        pop.country[idx],
    )
    success = np.where(
        is_attack,
        attack_step == _TAKEOVER_LOGINS - 1,
        rnd.uniform(seed, "login/ok", uid, pos) > 0.03,
    )
    order = np.lexsort((ts, idx))
    ts, idx, device, ip, country, success, is_attack = (
        a[order] for a in (ts, idx, device, ip, country, success, is_attack)
    )
    _, rank = _expand(pop.logins[first:last], first)
    method = rnd.choice(seed, "login/method", np.array([0.5, 0.8, 1.0]), pop.user_id[idx], rank)
    return pa.Table.from_arrays(
        [
            pa.array(pop.login_offset[idx] + rank + 1),
            pa.array(pop.user_id[idx]),
            _timestamps(_clip_to_period(pop, ts)),
            _ip_strings(ip),
            _prefixed("dev-", device),
            _take(ALL_COUNTRIES, country),
            _take(LOGIN_METHODS, method),
            pa.array(success),
            pa.array(is_attack.astype(np.int8)),
            _scenario_names(np.where(is_attack, _TAKEOVER, -1)),
        ],
        schema=LOGIN_SCHEMA,
    )


_SCRIPTED = (SCENARIO_NAMES.index("card_testing"), SCENARIO_NAMES.index("bot_intervals"))


def api_calls(pop: Population, first: int, last: int) -> pa.Table:
    """API calls; card-testing and bot victims' scripted calls come from the attacker's IP."""
    cfg, seed = pop.config, pop.config.seed
    idx, pos = _expand(pop.api_calls[first:last], first)
    uid = pop.user_id[idx]
    ts = _daytime(pop, "api", idx, pos, _squeezed(pop, idx))
    scripted = np.isin(pop.scenario[idx], _SCRIPTED) & (pos < pop.fraud_tx[idx])
    start = incident_start(seed, uid, *SCRIPTED_WINDOW, cfg.start_epoch, cfg.period_seconds)
    ts = np.where(scripted, start + pos * 20.0, ts)
    ip = np.where(
        scripted,
        foreign_ip(seed, "scenario/new-ip", uid),
        own_ip(seed, uid, rnd.integers(seed, "api/ip", 0, pop.n_ips[idx], uid, pos)),
    )
    endpoint = np.where(
        scripted,
        API_ENDPOINTS.index("/v1/payments"),
        rnd.choice(seed, "api/endpoint", np.cumsum([0.3, 0.3, 0.15, 0.1, 0.1, 0.05]), uid, pos),
    )
    status = np.where(
        rnd.uniform(seed, "api/status", uid, pos) < np.where(scripted, 0.3, 0.02),
        np.where(rnd.uniform(seed, "api/kind", uid, pos) < 0.5, 429, 401),
        200,
    )
    latency = np.exp(np.log(80) + 0.5 * rnd.normal(seed, "api/latency", uid, pos))
    order = np.lexsort((ts, idx))
    ts, idx, ip, endpoint, status, latency, scripted = (
        a[order] for a in (ts, idx, ip, endpoint, status, latency, scripted)
    )
    _, rank = _expand(pop.api_calls[first:last], first)
    return pa.Table.from_arrays(
        [
            pa.array(pop.api_offset[idx] + rank + 1),
            pa.array(pop.user_id[idx]),
            _timestamps(_clip_to_period(pop, ts)),
            _ip_strings(ip),
            _take(API_ENDPOINTS, endpoint),
            pa.array(status.astype(np.int32)),
            pa.array(np.round(latency, 1)),
            pa.array(scripted.astype(np.int8)),
            _scenario_names(np.where(scripted, pop.scenario[idx], -1)),
        ],
        schema=API_CALL_SCHEMA,
    )


def users(pop: Population, first: int, last: int) -> pa.Table:
    """The users table: persona, profile parameters and ground truth."""
    s = slice(first, last)
    return pa.Table.from_arrays(
        [
            pa.array(pop.user_id[s]),
            _take(PERSONA_NAMES, pop.persona[s]),
            _take(ALL_COUNTRIES, pop.country[s]),
            _take(_CURRENCY_OF_COUNTRY, pop.country[s]),
            pa.array(np.round(pop.activity[s], 4)),
            pa.array(np.round(pop.amount_mu[s], 4)),
            pa.array(pop.amount_sigma[s].astype(np.float64)),
            pa.array(pop.n_devices[s].astype(np.int32)),
            pa.array(pop.n_ips[s].astype(np.int32)),
            pa.array(pop.n_counterparties[s].astype(np.int32)),
            pa.array(pop.preferred_hour[s].astype(np.int32)),
            pa.array(pop.hour_spread[s].astype(np.float64)),
            pa.array((pop.scenario[s] >= 0).astype(np.int8)),
            _scenario_names(pop.scenario[s]),
        ],
        schema=USER_SCHEMA,
    )
