"""Per-transaction features: what a transaction looks like against its user's own history.

Written once in Ibis; the same expression runs on DuckDB (default) and PySpark.
"""

from __future__ import annotations

import ibis
import ibis.expr.types as ir

from fraudwatch.generator.scenarios import REPORTING_THRESHOLD

NIGHT_HOURS = (0, 6)  # [start, end) in UTC
VELOCITY_WINDOW_S = 3600  # "transactions in the last hour"
FAST_SWITCH_S = 3600  # a country change within an hour is physically implausible
SMALL_AMOUNT = 2.0  # card-testing size

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
)
CONTEXT_COLUMNS = (
    "tx_id",
    "user_id",
    "ts",
    "amount",
    "currency",
    "tx_type",
    "channel",
    "country",
    "ip",
    "device_id",
    "counterparty",
    "status",
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


def transaction_features(tx: ir.Table) -> ir.Table:
    """Add the per-transaction feature columns to a raw transactions table."""
    t = tx.mutate(
        # Whole seconds, truncated the same way on both engines (DuckDB's epoch is fractional).
        ts_s=tx.ts.epoch_seconds().floor().cast("int64"),
        hour=tx.ts.hour().cast("int32"),
    )
    by_user = ibis.window(group_by="user_id", order_by=list(_ORDER))
    whole_user = ibis.window(group_by="user_id")
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
    )
    t = t.mutate(gap_prev_prev_s=t.gap_prev_s.lag().over(by_user))
    return t.select(
        *CONTEXT_COLUMNS,
        *[c for c in GROUND_TRUTH if c in tx.columns],
        log_amount=(t.amount + 1).ln(),
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
            (t.amount >= 0.9 * REPORTING_THRESHOLD) & (t.amount < REPORTING_THRESHOLD)
        ).cast("int32"),
        is_declined=(t.status == "declined").cast("int32"),
        is_api=(t.channel == "api").cast("int32"),
    )
