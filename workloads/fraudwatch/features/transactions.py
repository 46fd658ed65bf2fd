"""Per-transaction features: what a transaction looks like against its user's own history.

Written once in Ibis; the same expression runs on DuckDB (default) and PySpark. Definitions
and the reasons behind them: docs/features.md. Regulatory constants and country locations come
from `fraudwatch.contract`, never from the generator.
"""

from __future__ import annotations

from collections.abc import Mapping

import ibis
import ibis.expr.types as ir

from fraudwatch.contract.locations import EARTH_RADIUS_KM, country_locations
from fraudwatch.contract.regulatory import (
    ANY_CURRENCY,
    NEAR_THRESHOLD_SHARE,
    reporting_thresholds,
)
from fraudwatch.contract.scored_output import TRANSACTION_CONTEXT_COLUMNS

NIGHT_HOURS = (0, 6)  # [start, end) in UTC
VELOCITY_WINDOW_S = 3600  # "transactions in the last hour"
FAST_SWITCH_S = 3600  # a country change within an hour is physically implausible
SMALL_AMOUNT = 2.0  # card-testing size
RISKY_TYPES = ("withdrawal", "transfer")  # money leaving the account for good
# Behaviour change: the user's RECENT_N latest transactions (this one included) against the
# BASELINE_N before them. Bounded windows, so the stream's kept history (64 per user) holds
# everything they read: RECENT_N + BASELINE_N - 1 earlier transactions.
RECENT_N = 5
BASELINE_N = 32
LOOKBACK_ROWS = RECENT_N + BASELINE_N - 1
# Geo-velocity between consecutive transactions' countries (country centroids).
MIN_TRAVEL_GAP_S = 60  # gaps below a minute count as a minute (no division by zero)
MAX_TRAVEL_KMH = 1_000.0  # faster than an airliner's ground speed
MIN_TRAVEL_KM = 500.0  # below this, country centroids cannot tell travel from noise

# Columns the models read, in order. Everything else in the table is context.
TRANSACTION_FEATURES = (
    "log_amount",
    "amount_to_user_median",
    "amount_zscore",
    "hour",
    "is_night",
    "gap_prev_s_log",
    "gap_change_log",
    "velocity_1h",
    "new_ip",
    "new_device",
    "new_country",
    "new_counterparty",
    "country_switch_fast",
    "tx_type_share",
    "is_withdrawal",
    "is_transfer",
    "is_small_amount",
    "near_reporting_threshold",
    "is_declined",
    "is_api",
    "amount_vs_baseline_log",
    "recent_amount_shift",
    "recent_risky_shift",
    "geo_velocity_kmh_log",
    "impossible_travel",
)
REQUIRED_COLUMNS = {
    "tx_id": "int",
    "user_id": "int",
    "ts": "timestamp",
    "amount": "numeric",
    "currency": "string",
    "tx_type": "string",
    "channel": "string",
    "country": "string",
    "ip": "string",
    "device_id": "string",
    "counterparty": "string",
    "status": "string",
}
GROUND_TRUTH = ("label", "scenario")


_ORDER = ("ts", "tx_id")


def _first_seen(column: str) -> ir.IntegerValue:
    """1 when this is the user's first transaction with this value of `column`."""
    w = ibis.window(group_by=["user_id", column], order_by=list(_ORDER))
    return (ibis.row_number().over(w) == 0).cast("int32")


def _coordinate(country: ir.StringValue, which: int) -> ir.FloatingValue:
    """Latitude (which=0) or longitude (1) of a country's centre; null when unknown. A CASE
    over the location table, not a join: the expression stays plain SQL that any caller can
    compile and run (no in-memory table to register)."""
    table = country_locations()
    return country.substitute(
        {code: float(point[which]) for code, point in table.items()},
        else_=ibis.null("float64"),
    ).cast("float64")


def _threshold(currency: ir.StringValue, thresholds: Mapping[str, float]) -> ir.FloatingValue:
    """The reporting threshold of each row's currency (the `*` entry for unlisted ones)."""
    listed = {c: float(v) for c, v in thresholds.items() if c != ANY_CURRENCY}
    default = float(thresholds[ANY_CURRENCY])
    return currency.substitute(listed, else_=default).cast("float64")


def _great_circle_km(lat1, lon1, lat2, lon2) -> ir.FloatingValue:
    """Haversine distance (km) between two points in degrees, as an Ibis expression."""
    p1, p2 = lat1.radians(), lat2.radians()
    dp, dl = (lat2 - lat1).radians(), (lon2 - lon1).radians()
    h = (dp / 2).sin() ** 2 + p1.cos() * p2.cos() * (dl / 2).sin() ** 2
    # Not ibis.least: DuckDB and Spark skip nulls in it, and a missing location must stay null.
    return 2 * EARTH_RADIUS_KM * ibis.ifelse(h > 1.0, 1.0, h).sqrt().asin()


def transaction_features(
    tx: ir.Table, reporting_thresholds_by_currency: Mapping[str, float] | None = None
) -> ir.Table:
    """Add the per-transaction feature columns to a raw transactions table.

    `reporting_thresholds_by_currency` defaults to the configured ones
    (`fraudwatch.contract.regulatory.reporting_thresholds`)."""
    configured = reporting_thresholds()  # the environment is read once
    given = (
        configured if reporting_thresholds_by_currency is None else reporting_thresholds_by_currency
    )
    thresholds = {ANY_CURRENCY: configured[ANY_CURRENCY], **given}
    t = tx.mutate(
        # Whole seconds, truncated the same way on both engines (DuckDB's epoch is fractional).
        ts_s=tx.ts.epoch_seconds().floor().cast("int64"),
        hour=tx.ts.hour().cast("int32"),
        log_amount=(tx.amount + 1).ln(),
        is_risky=tx.tx_type.isin(RISKY_TYPES).cast("float64"),
    )
    by_user = ibis.window(group_by="user_id", order_by=list(_ORDER))
    whole_user = ibis.window(group_by="user_id")
    earlier = ibis.window(group_by="user_id", order_by=list(_ORDER), rows=(-BASELINE_N, -1))
    recent = ibis.window(group_by="user_id", order_by=list(_ORDER), rows=(-(RECENT_N - 1), 0))
    baseline = ibis.window(
        group_by="user_id", order_by=list(_ORDER), rows=(-LOOKBACK_ROWS, -RECENT_N)
    )
    median = t.group_by("user_id").aggregate(user_median=t.amount.median())
    t = t.join(median, "user_id")
    t = t.mutate(
        gap_prev_s=(t.ts_s - t.ts_s.lag().over(by_user)).cast("float64"),
        prev_country=t.country.lag().over(by_user),
        velocity_1h=t.tx_id.count().over(
            ibis.range_window(
                preceding=VELOCITY_WINDOW_S, following=0, group_by="user_id", order_by="ts_s"
            )
        ),
        amount_mean_u=t.amount.mean().over(whole_user),
        amount_std_u=t.amount.std().over(whole_user),
        type_count=t.tx_id.count().over(ibis.window(group_by=["user_id", "tx_type"])),
        user_count=t.tx_id.count().over(whole_user),
        new_ip=_first_seen("ip"),
        new_device=_first_seen("device_id"),
        new_country=_first_seen("country"),
        new_counterparty=_first_seen("counterparty"),
        user_tx_index=ibis.row_number().over(by_user),
        earlier_log_amount=t.log_amount.mean().over(earlier),
        recent_log_amount=t.log_amount.mean().over(recent),
        baseline_log_amount=t.log_amount.mean().over(baseline),
        recent_risky=t.is_risky.mean().over(recent),
        baseline_risky=t.is_risky.mean().over(baseline),
    )
    t = t.mutate(
        gap_prev_prev_s=t.gap_prev_s.lag().over(by_user),
        # Most transactions stay in the previous one's country: the location lookups run only
        # for the others (both engines evaluate a CASE branch only for the rows that take it).
        travel_km=ibis.ifelse(
            t.country == t.prev_country,
            0.0,
            _great_circle_km(
                _coordinate(t.prev_country, 0),
                _coordinate(t.prev_country, 1),
                _coordinate(t.country, 0),
                _coordinate(t.country, 1),
            ),
        ),
    )
    t = t.mutate(
        travel_kmh=t.travel_km
        / ibis.ifelse(t.gap_prev_s < MIN_TRAVEL_GAP_S, MIN_TRAVEL_GAP_S, t.gap_prev_s)
        * 3600.0,
    )
    threshold = _threshold(t.currency, thresholds)
    return t.select(
        *TRANSACTION_CONTEXT_COLUMNS,  # carried through beside the features
        *[c for c in GROUND_TRUTH if c in tx.columns],
        log_amount=t.log_amount,
        amount_to_user_median=t.amount / ibis.greatest(t.user_median, 0.01),
        amount_zscore=((t.amount - t.amount_mean_u) / t.amount_std_u.nullif(0)).fill_null(0.0),
        hour=t.hour,
        is_night=((t.hour >= NIGHT_HOURS[0]) & (t.hour < NIGHT_HOURS[1])).cast("int32"),
        gap_prev_s=t.gap_prev_s,
        gap_prev_s_log=(t.gap_prev_s + 1).ln(),
        gap_change_log=((t.gap_prev_s - t.gap_prev_prev_s).abs() + 1).ln(),
        velocity_1h=t.velocity_1h.cast("int64"),
        new_ip=t.new_ip,
        new_device=t.new_device,
        new_country=t.new_country,
        new_counterparty=t.new_counterparty,
        country_switch_fast=((t.prev_country != t.country) & (t.gap_prev_s < FAST_SWITCH_S))
        .fill_null(False)
        .cast("int32"),
        tx_type_share=(t.type_count / t.user_count).cast("float64"),
        is_withdrawal=(t.tx_type == "withdrawal").cast("int32"),
        is_transfer=(t.tx_type == "transfer").cast("int32"),
        is_small_amount=(t.amount < SMALL_AMOUNT).cast("int32"),
        near_reporting_threshold=(
            (t.amount >= NEAR_THRESHOLD_SHARE * threshold) & (t.amount < threshold)
        ).cast("int32"),
        is_declined=(t.status == "declined").cast("int32"),
        is_api=(t.channel == "api").cast("int32"),
        is_risky=t.is_risky,
        amount_vs_baseline_log=t.log_amount - t.earlier_log_amount,
        recent_amount_shift=t.recent_log_amount - t.baseline_log_amount,
        recent_risky_shift=t.recent_risky - t.baseline_risky,
        travel_km=t.travel_km,
        geo_velocity_kmh_log=(t.travel_kmh + 1).ln(),
        impossible_travel=((t.travel_kmh > MAX_TRAVEL_KMH) & (t.travel_km > MIN_TRAVEL_KM))
        .fill_null(False)
        .cast("int32"),
        # Position in the user's history (0 = first) and its length: the user features
        # compare the early and the recent half.
        user_tx_index=t.user_tx_index.cast("int64"),
        user_tx_count=t.user_count.cast("int64"),
    )
