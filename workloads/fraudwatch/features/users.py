"""Per-user features, aggregated from the per-transaction features (one definition of each).
Definitions and the reasons behind them: docs/features.md."""

from __future__ import annotations

import ibis
import ibis.expr.types as ir

USER_FEATURES = (
    "tx_count",
    "amount_mean",
    "amount_max",
    "amount_std",
    "gap_mean_s",
    "gap_min_s",
    "gap_max_s",
    "gap_cv",
    "velocity_max_1h",
    "night_share",
    "distinct_ips",
    "distinct_devices",
    "distinct_countries",
    "distinct_counterparties",
    "withdrawal_share",
    "transfer_share",
    "small_amount_share",
    "max_amount_to_median",
    "declined_share",
    "api_share",
    "near_threshold_count",
    "fast_country_switches",
    "new_device_share",
    "failed_logins",
    "amount_change_point",
    "risky_change_point",
    "activity_change_point",
    "behaviour_change_point",
    "max_amount_vs_baseline",
    "geo_velocity_max_log",
    "impossible_travel_count",
)


def _split(t: ir.Table) -> tuple[ir.FloatingValue, ir.FloatingValue]:
    """(k, n): the transactions before this one (null at the user's first) and the user's
    total, as floats."""
    return t.user_tx_index.cast("float64").nullif(0.0), t.user_tx_count.cast("float64")


def _change_points(txf: ir.Table) -> ir.Table:
    """At each transaction k of a user's n (in time order), the standardised rise of the mean
    from before it to from it on: (mean[k:] - mean[:k]) * sqrt(k (n - k) / n), for the log
    amount and for the risky-type indicator. Its maximum over k is the classic CUSUM /
    likelihood-ratio statistic for one change in level: large when the user's behaviour
    stepped up at some point and stayed there (persona drift), small for a stable user,
    whatever the user's own level. Null at the user's first transaction."""
    before = ibis.window(group_by="user_id", order_by=["ts", "tx_id"], rows=(None, -1))
    whole = ibis.window(group_by="user_id")
    t = txf.mutate(
        amount_before=txf.log_amount.sum().over(before),
        amount_total=txf.log_amount.sum().over(whole),
        risky_before=txf.is_risky.sum().over(before),
        risky_total=txf.is_risky.sum().over(whole),
    )
    k, n = _split(t)
    scale = (k * (n - k) / n).sqrt()

    def rise(before: ir.FloatingValue, total: ir.FloatingValue) -> ir.FloatingValue:
        return ((total - before) / (n - k) - before / k) * scale

    amount_shift = rise(t.amount_before, t.amount_total)
    risky_shift = rise(t.risky_before, t.risky_total)
    share = t.risky_total / n
    return t.mutate(
        amount_shift_at=amount_shift,
        risky_shift_at=risky_shift,
        # The same rises in units of the user's own spread (the statistic's null scale):
        # log-amount standard deviation, and sqrt(p (1 - p)) of the risky indicator.
        amount_rise_z=(amount_shift / txf.log_amount.std().over(whole).nullif(0.0))
        .clip(lower=0.0)
        .fill_null(0.0),
        risky_rise_z=(risky_shift / (share * (1 - share)).sqrt().nullif(0.0))
        .clip(lower=0.0)
        .fill_null(0.0),
    )


def _activity_change_points(txf: ir.Table) -> ir.Table:
    """At each transaction k of a user's n (k earlier ones), how much more often the user
    transacts from it on than before it: the signed root of the likelihood ratio of one change
    in a Poisson rate. Under a constant rate, the share of the user's transactions that fall
    before the split is Binomial(n, f), f being the share of the observed time (from the user's
    first transaction to the end of the data) that lies before it; the statistic is
    sqrt(2 n KL(k/n || f)) when fewer fell before than the time predicts (a rise), else 0.
    Large when a quiet account turns busy and stays busy (persona drift, a dormant account
    reactivated), whatever the user's usual rate; null at the user's first transaction.

    The end of the data is one scalar joined to every row (no window over the whole table,
    which a cluster engine would run on one partition)."""
    t = txf.mutate(ts_s=txf.ts.epoch_seconds().floor().cast("float64"))  # as transactions.py
    end = t.aggregate(data_end_s=t.ts_s.max())
    t = t.cross_join(end)
    t = t.mutate(first_s=t.ts_s.min().over(ibis.window(group_by="user_id")))
    k, n = _split(t)
    observed = (t.data_end_s - t.first_s).nullif(0.0)
    f = ((t.ts_s - t.first_s) / observed).clip(lower=1e-6, upper=1 - 1e-6)
    share = k / n
    llr = k * (share / f).ln() + (n - k) * ((1 - share) / (1 - f)).ln()
    rise = (2 * llr.clip(lower=0.0)).sqrt() * (share < f).cast("float64")
    t = t.mutate(activity_rise_at=rise)
    # One change of persona moves amount, risk and rate at the same split: the joint statistic
    # of one change in several independent standardised streams is the root of the sum of
    # their squared rises at that split (a chi statistic), so three moderate rises together
    # stand out where each alone does not.
    joint = (t.amount_rise_z**2 + t.risky_rise_z**2 + t.activity_rise_at.fill_null(0.0) ** 2).sqrt()
    joint = ibis.ifelse(t.user_tx_index == 0, ibis.null("float64"), joint)
    return t.mutate(behaviour_rise_at=joint).drop("ts_s", "data_end_s", "first_s")


def user_features(txf: ir.Table, logins: ir.Table | None = None) -> ir.Table:
    """One row per user from the output of transaction_features (and, if given, logins)."""
    txf = _activity_change_points(_change_points(txf))
    g = txf.group_by("user_id").aggregate(
        tx_count=txf.tx_id.count(),
        amount_mean=txf.amount.mean(),
        amount_max=txf.amount.max(),
        amount_std=txf.amount.std().fill_null(0.0),
        gap_mean_s=txf.gap_prev_s.mean(),
        gap_std_s=txf.gap_prev_s.std(),
        gap_min_s=txf.gap_prev_s.min(),
        gap_max_s=txf.gap_prev_s.max(),
        velocity_max_1h=txf.velocity_1h.max(),
        night_share=txf.is_night.mean(),
        distinct_ips=txf.ip.nunique(),
        distinct_devices=txf.device_id.nunique(),
        distinct_countries=txf.country.nunique(),
        distinct_counterparties=txf.counterparty.nunique(),
        withdrawal_share=txf.is_withdrawal.mean(),
        transfer_share=txf.is_transfer.mean(),
        small_amount_share=txf.is_small_amount.mean(),
        max_amount_to_median=txf.amount_to_user_median.max(),
        declined_share=txf.is_declined.mean(),
        api_share=txf.is_api.mean(),
        near_threshold_count=txf.near_reporting_threshold.sum(),
        fast_country_switches=txf.country_switch_fast.sum(),
        new_device_share=txf.new_device.mean(),
        amount_change_point=txf.amount_shift_at.max(),
        risky_change_point=txf.risky_shift_at.max(),
        activity_change_point=txf.activity_rise_at.max(),
        behaviour_change_point=txf.behaviour_rise_at.max(),
        max_amount_vs_baseline=txf.amount_vs_baseline_log.max(),
        geo_velocity_max_log=txf.geo_velocity_kmh_log.max(),
        impossible_travel_count=txf.impossible_travel.sum(),
    )
    g = g.mutate(gap_cv=(g.gap_std_s / g.gap_mean_s.nullif(0)))
    if logins is not None:
        failed = (
            logins.filter(~logins.success)
            .group_by("user_id")
            .aggregate(failed_logins=ibis._.count())
        )
        g = g.left_join(failed, "user_id").drop("user_id_right")
        g = g.mutate(failed_logins=g.failed_logins.fill_null(0))
    else:
        g = g.mutate(failed_logins=ibis.literal(0, "int64"))
    return g.select("user_id", *USER_FEATURES)
