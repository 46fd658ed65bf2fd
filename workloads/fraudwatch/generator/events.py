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
from fraudwatch.errors import UserError
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
US_PER_DAY = 86_400 * 1_000_000


def _expand(counts: np.ndarray, first: int) -> tuple[np.ndarray, np.ndarray]:
    """(global user index, position within user) for each row of a chunk."""
    idx = np.repeat(np.arange(first, first + len(counts)), counts)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    pos = np.arange(len(idx)) - np.repeat(starts, counts)
    return idx, pos


def _daytime(pop: Population, stream: str, rows: rnd.Rows, idx: np.ndarray, squeeze: np.ndarray):
    """Epoch seconds around each user's preferred hour; squeezed users only in the first half."""
    cfg = pop.config
    days = np.where(squeeze, max(1, cfg.days // 2), cfg.days)
    day = rows.integers(stream + "/day", 0, days)
    hour = np.mod(
        pop.preferred_hour[idx] + np.round(pop.hour_spread[idx] * rows.normal(stream + "/hour")),
        24,
    )
    second = rows.uniform(stream + "/second") * 3600
    return cfg.start_epoch + day * 86_400 + hour * 3600 + second


def _squeezed(pop: Population, idx: np.ndarray) -> np.ndarray:
    flags = np.array([s.squeezes_history for s in SCENARIOS] + [False])
    return flags[pop.scenario[idx]]


# IP addresses are written as text in numpy and handed to Arrow as one buffer: each row is laid
# out in a 16-byte matrix from a table of the 65,536 octet pairs ("ddd.ddd." padded to 8
# bytes), and one boolean selection drops the padding. The same strings as casting the four
# octets to text and joining them in Arrow, in a third of the time.
def _octet_pairs() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    text = np.array([f"{i}.".ljust(4, "\0").encode() for i in range(256)]).view(np.uint32)
    keep = np.array([bytes([1] * (len(str(i)) + 1)).ljust(4, b"\0") for i in range(256)])
    keep_last = np.array([bytes([1] * len(str(i))).ljust(4, b"\0") for i in range(256)])
    digits = np.array([len(str(i)) for i in range(256)])

    def pairs(first: np.ndarray, second: np.ndarray) -> np.ndarray:
        return (first.astype(np.uint64)[:, None] | second.astype(np.uint64)[None, :] << 32).ravel()

    keep, keep_last = keep.view(np.uint32), keep_last.view(np.uint32)
    both_text = np.tile(pairs(text, text), 2)  # index: pair, or 65,536 + pair for the last one
    both_keep = np.concatenate([pairs(keep, keep), pairs(keep, keep_last)])
    return both_text, both_keep, (digits[:, None] + digits[None, :]).ravel()


_PAIR_TEXT, _PAIR_KEEP, _PAIR_DIGITS = _octet_pairs()


def _string_array(text: np.ndarray, keep: np.ndarray, lengths: np.ndarray) -> pa.Array:
    """A string array from a rows x width byte matrix, the bytes to keep and each row's length."""
    offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    if offsets[-1] >= 2**31:  # a string array's offsets are 32-bit
        raise UserError("a chunk's text column passed 2 GiB; lower --chunk-users")
    data = text[keep.view(np.bool_)]
    return pa.StringArray.from_buffers(
        len(lengths), pa.py_buffer(offsets.astype(np.int32)), pa.py_buffer(data)
    )


def _ip_strings(ip: np.ndarray) -> pa.Array:
    """Dotted-quad text of IPv4 addresses held as integers."""
    high, low = (ip >> 16) & 0xFFFF, ip & 0xFFFF
    pair = np.stack([high, low + 65_536], axis=1)
    lengths = _PAIR_DIGITS[high] + _PAIR_DIGITS[low] + 3
    text, keep = _PAIR_TEXT[pair].view(np.uint8), _PAIR_KEEP[pair].view(np.uint8)
    return _string_array(text, keep, lengths)


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


def _micros(ts: np.ndarray) -> np.ndarray:
    return np.round(ts * 1e6).astype(np.int64)


def _timestamps(micros: np.ndarray) -> pa.Array:
    return pa.array(micros, pa.int64()).cast(TIMESTAMP)


def _stable_argsort(values: np.ndarray) -> np.ndarray:
    """`np.argsort(values, kind="stable")`, several times faster: numpy's vectorised unstable
    sort, then equal values (rare: times clipped to the period's end, exact coincidences) put
    back in their original order."""
    order = np.argsort(values)
    ordered = values[order]
    tie = ordered[1:] == ordered[:-1]
    if tie.any():
        run = np.concatenate([[0], np.cumsum(~tie)])  # one number per run of equal values
        tied = np.zeros(len(order), dtype=bool)
        tied[1:] |= tie
        tied[:-1] |= tie
        at = np.flatnonzero(tied)
        order[at] = order[at][np.lexsort((order[at], run[at]))]
    return order


def _arrange(
    local: np.ndarray, ts: np.ndarray, micros: np.ndarray, counts: np.ndarray, by_day: bool
) -> tuple[np.ndarray, np.ndarray]:
    """The order of a chunk's rows, and each row's rank within its user in time order.

    Rows go by user (`local`, the index within the chunk, `counts` rows each), then time `ts`,
    ties in their original order: `np.lexsort((ts, local))`, computed as a stable sort by time
    then a stable sort of the small user numbers (a radix sort). With by_day they then go by
    UTC date of `micros` (stable, so within a date still by user and time): the order of the
    date-partitioned files, each date a slice. One permutation, applied once to each column."""
    by_time = _stable_argsort(ts)
    user = local[by_time]
    if len(counts) <= np.iinfo(np.uint16).max + 1:
        user = user.astype(np.uint16)  # stable sorts of 16-bit keys are radix sorts
    order = by_time[np.argsort(user, kind="stable")]
    _, rank = _expand(counts, 0)
    if by_day and len(order):
        day = micros[order] // US_PER_DAY
        day -= day.min()
        if day.max() <= np.iinfo(np.int16).max:
            day = day.astype(np.int16)
        by_date = np.argsort(day, kind="stable")
        order, rank = order[by_date], rank[by_date]
    return order, rank


def _user_rows(counts: np.ndarray, first: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(user index within the chunk, global user index, position within the user) per row."""
    local, pos = _expand(counts, 0)
    return local, local + first, pos


def transactions(pop: Population, first: int, last: int, by_day: bool = False) -> pa.Table:
    """All transactions of users with index first..last-1, sorted by user then time (with
    by_day: by UTC date, then user, then time).

    Only the times are drawn before the rows are put in order; every other column is drawn
    straight in that order (all draws are keyed by user and position, not by row number), so
    no column is ever permuted. The incident rows' values then replace the placeholders drawn
    at their places."""
    cfg, seed = pop.config, pop.config.seed
    user_id = pop.user_id[first:last]
    normal = pop.normal_tx[first:last]
    local, idx, pos = _user_rows(normal, first)
    ts = _daytime(pop, "tx", rnd.Rows(seed, user_id, local, pos), idx, _squeezed(pop, idx))
    # Travel is by trips of TRIP_DAYS days: during a trip all of the user's transactions are
    # made from the same foreign country and hotel IP, so normal users do not hop between
    # countries within minutes or hours (the impossible_travel scenario's signature).
    trip = ((ts - cfg.start_epoch) // (TRIP_DAYS * 86_400)).astype(np.int64)
    incidents = _incidents(pop, first, last)
    n_normal, n_incident = len(ts), len(incidents["ts"])
    ts = _clip_to_period(pop, np.concatenate([ts, incidents["ts"]]))
    micros = _micros(ts)
    local = np.concatenate([local, incidents["idx"] - first])
    order, rank = _arrange(local, ts, micros, normal + pop.fraud_tx[first:last], by_day)
    local, idx = local[order], local[order] + first
    placeholder = np.zeros(n_incident, dtype=np.int64)
    pos = np.concatenate([pos, placeholder])[order]
    trip = np.concatenate([trip, placeholder])[order]

    rows = rnd.Rows(seed, user_id, local, pos)
    uid = user_id[local]
    tx_type = rows.choice("tx/type", pop.type_cumulative(first, last), local)
    factor = np.array([TYPE_AMOUNT_FACTOR[t] for t in TX_TYPES])[tx_type]
    amount = np.exp(pop.amount_mu[idx] + pop.amount_sigma[idx] * rows.normal("tx/amount"))
    channel = rows.choice("tx/channel", np.cumsum(CHANNEL_BY_TYPE, axis=1), tx_type)
    travel = np.flatnonzero(
        rnd.Rows(seed, user_id, local, trip).uniform("tx/travel") < pop.travel_share[idx]
    )
    # The foreign country and hotel IP only for the rows abroad (a few per cent).
    country = pop.country[idx]
    country[travel] = rnd.integers(seed, "tx/abroad", 0, len(COUNTRIES), uid[travel], trip[travel])
    ip = own_ip(seed, user_id, rows.integers("tx/ip", 0, pop.n_ips[idx]), local)
    ip[travel] = foreign_ip(seed, "tx/travel-ip", uid[travel], trip[travel])
    cp_slot = rows.integers("tx/cp", 0, pop.n_counterparties[idx])
    columns = {
        "amount": amount * factor,
        "tx_type": tx_type,
        "channel": channel,
        "device": own_device(uid, rows.integers("tx/device", 0, pop.n_devices[idx])),
        "ip": ip,
        "country": country,
        "counterparty": (
            rnd.Rows(seed, user_id, local, cp_slot).hash64("cp") % np.uint64(2_000_000)
        ).astype(np.int64),
        "status": rows.choice("tx/status", np.cumsum(STATUS_SHARE)),
        "scenario": np.full(len(idx), -1),
    }
    at = np.flatnonzero(order >= n_normal)  # where the incident rows went
    source = order[at] - n_normal
    for name, values in columns.items():
        values[at] = incidents[name][source]
    m = columns
    return pa.Table.from_arrays(
        [
            pa.array(pop.tx_offset[idx] + rank + 1),
            pa.array(uid),
            _timestamps(micros[order]),
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


_INCIDENT_COLUMNS = (
    "ts",
    "amount",
    "tx_type",
    "channel",
    "device",
    "ip",
    "country",
    "counterparty",
    "status",
)


def _incidents(pop: Population, first: int, last: int) -> dict[str, np.ndarray]:
    """The scenario transactions of users first..last-1 (a few per victim): their columns, the
    global user index (`idx`) and the scenario number, in scenario order."""
    cfg, seed = pop.config, pop.config.seed
    fraud = pop.fraud_tx[first:last]
    parts = []
    for number, scenario in enumerate(SCENARIOS):
        counts = np.where(pop.scenario[first:last] == number, fraud, 0)
        if counts.sum() == 0:
            continue
        fidx, fpos = _expand(counts, first)
        incident = IncidentRows(
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
        built = scenario.build(incident)
        built["idx"] = fidx
        built["scenario"] = np.full(len(fidx), number)
        parts.append(built)
    names = (*_INCIDENT_COLUMNS, "idx", "scenario")
    if not parts:
        floats = ("ts", "amount")
        return {name: np.zeros(0, dtype=float if name in floats else np.int64) for name in names}
    return {name: np.concatenate([np.asarray(p[name]) for p in parts]) for name in names}


_TAKEOVER = SCENARIO_NAMES.index("account_takeover")
_TAKEOVER_LOGINS = 6  # five failed attempts, then the attacker gets in


def _takeover_attempts(pop: Population, idx: np.ndarray, pos: np.ndarray):
    """The attacker's login attempts among these rows (the last six of each takeover victim):
    their places, user ids and step (0..5)."""
    counts = pop.logins[idx]
    at = np.flatnonzero((pop.scenario[idx] == _TAKEOVER) & (pos >= counts - _TAKEOVER_LOGINS))
    return at, pop.user_id[idx[at]], pos[at] - (counts[at] - _TAKEOVER_LOGINS)


def logins(pop: Population, first: int, last: int, by_day: bool = False) -> pa.Table:
    """Login attempts; account-takeover victims end with the attacker's failed tries and entry.
    As for transactions, only the times are drawn before the rows are put in order."""
    cfg, seed = pop.config, pop.config.seed
    user_id = pop.user_id[first:last]
    local, idx, pos = _user_rows(pop.logins[first:last], first)
    ts = _daytime(pop, "login", rnd.Rows(seed, user_id, local, pos), idx, _squeezed(pop, idx))
    at, uid, step = _takeover_attempts(pop, idx, pos)
    start = incident_start(seed, uid, *TAKEOVER_WINDOW, cfg.start_epoch, cfg.period_seconds)
    ts[at] = start - (_TAKEOVER_LOGINS - step) * 40.0
    micros = _micros(_clip_to_period(pop, ts))
    order, rank = _arrange(local, ts, micros, pop.logins[first:last], by_day)
    local, pos = local[order], pos[order]
    idx = local + first

    rows = rnd.Rows(seed, user_id, local, pos)
    device = own_device(user_id[local], rows.integers("login/device", 0, pop.n_devices[idx]))
    ip = own_ip(seed, user_id, rows.integers("login/ip", 0, pop.n_ips[idx]), local)
    country = pop.country[idx]
    success = rows.uniform("login/ok") > 0.03
    # The attacker's attempts replace the user's own values.
    at, uid, step = _takeover_attempts(pop, idx, pos)
    far = FAR_COUNTRY_INDEX
    device[at] = foreign_device(seed, "scenario/new-device", uid)
    ip[at] = foreign_ip(seed, "scenario/new-ip", uid)
    country[at] = far[np.floor(rnd.uniform(seed, "scenario/far", uid) * len(far)).astype(np.int64)]
    success[at] = step == _TAKEOVER_LOGINS - 1
    is_attack = np.zeros(len(idx), dtype=np.int8)
    is_attack[at] = 1
    method = rnd.Rows(seed, user_id, local, rank).choice("login/method", np.array([0.5, 0.8, 1.0]))
    return pa.Table.from_arrays(
        [
            pa.array(pop.login_offset[idx] + rank + 1),
            pa.array(user_id[local]),
            _timestamps(micros[order]),
            _ip_strings(ip),
            _prefixed("dev-", device),
            _take(ALL_COUNTRIES, country),
            _take(LOGIN_METHODS, method),
            pa.array(success),
            pa.array(is_attack),
            _scenario_names(np.where(is_attack == 1, _TAKEOVER, -1)),
        ],
        schema=LOGIN_SCHEMA,
    )


_SCRIPTED = (SCENARIO_NAMES.index("card_testing"), SCENARIO_NAMES.index("bot_intervals"))


def api_calls(pop: Population, first: int, last: int, by_day: bool = False) -> pa.Table:
    """API calls; card-testing and bot victims' scripted calls come from the attacker's IP.
    As for transactions, only the times are drawn before the rows are put in order."""
    cfg, seed = pop.config, pop.config.seed
    user_id = pop.user_id[first:last]
    local, idx, pos = _user_rows(pop.api_calls[first:last], first)
    ts = _daytime(pop, "api", rnd.Rows(seed, user_id, local, pos), idx, _squeezed(pop, idx))
    scripted = np.isin(pop.scenario[idx], _SCRIPTED) & (pos < pop.fraud_tx[idx])
    script = np.flatnonzero(scripted)
    uid = pop.user_id[idx[script]]
    start = incident_start(seed, uid, *SCRIPTED_WINDOW, cfg.start_epoch, cfg.period_seconds)
    ts[script] = start + pos[script] * 20.0
    micros = _micros(_clip_to_period(pop, ts))
    order, rank = _arrange(local, ts, micros, pop.api_calls[first:last], by_day)
    local, pos, scripted = local[order], pos[order], scripted[order]
    idx = local + first

    rows = rnd.Rows(seed, user_id, local, pos)
    ip = own_ip(seed, user_id, rows.integers("api/ip", 0, pop.n_ips[idx]), local)
    endpoint = rows.choice("api/endpoint", np.cumsum([0.3, 0.3, 0.15, 0.1, 0.1, 0.05]))
    # The attacker's scripted calls (a few per card-testing or bot victim).
    script = np.flatnonzero(scripted)
    ip[script] = foreign_ip(seed, "scenario/new-ip", user_id[local[script]])
    endpoint[script] = API_ENDPOINTS.index("/v1/payments")
    failed = np.flatnonzero(rows.uniform("api/status") < np.where(scripted, 0.3, 0.02))
    status = np.full(len(idx), 200, dtype=np.int32)
    kind = rnd.uniform(seed, "api/kind", user_id[local[failed]], pos[failed])
    status[failed] = np.where(kind < 0.5, 429, 401)
    latency = np.exp(np.log(80) + 0.5 * rows.normal("api/latency"))
    return pa.Table.from_arrays(
        [
            pa.array(pop.api_offset[idx] + rank + 1),
            pa.array(user_id[local]),
            _timestamps(micros[order]),
            _ip_strings(ip),
            _take(API_ENDPOINTS, endpoint),
            pa.array(status),
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
