"""Feature definitions on a hand-made history whose answers are known."""

from __future__ import annotations

import math
import statistics
from datetime import UTC, datetime

import pyarrow as pa
import pytest
from fraudwatch.features.engine import connect
from fraudwatch.features.transactions import TRANSACTION_FEATURES, transaction_features
from fraudwatch.features.users import USER_FEATURES, user_features


def _tx(rows):
    cols = [
        "tx_id",
        "user_id",
        "ts",
        "amount",
        "tx_type",
        "channel",
        "country",
        "ip",
        "device_id",
        "counterparty",
        "status",
    ]
    data = {c: [r[i] for r in rows] for i, c in enumerate(cols)}
    data["currency"] = ["EUR"] * len(rows)
    data["ts"] = pa.array(data["ts"], pa.timestamp("us", tz="UTC"))
    return pa.table(data)


def t(day, hour, minute=0):
    return datetime(2026, 1, day, hour, minute, tzinfo=UTC)


HISTORY = _tx(
    [
        (1, 1, t(1, 10), 20.0, "purchase", "web", "GB", "1.1.1.1", "d1", "m1", "completed"),
        (2, 1, t(2, 10), 30.0, "purchase", "web", "GB", "1.1.1.1", "d1", "m2", "completed"),
        (3, 1, t(3, 10), 40.0, "purchase", "web", "GB", "1.1.1.1", "d1", "m1", "completed"),
        (4, 1, t(4, 2, 0), 9500.0, "transfer", "api", "NG", "9.9.9.9", "d9", "m7", "declined"),
        (5, 1, t(4, 2, 20), 9600.0, "withdrawal", "atm", "RU", "9.9.9.9", "d9", "m7", "completed"),
        (6, 2, t(1, 12), 5.0, "bill", "mobile", "DE", "2.2.2.2", "e1", "m3", "completed"),
        # User 3: eight small purchases a day apart, then five large transfers (persona drift).
        *[
            (
                100 + d,
                3,
                t(1 + d, 9),
                20.0,
                "purchase",
                "web",
                "FR",
                "3.3.3.3",
                "f1",
                "m4",
                "completed",
            )
            for d in range(8)
        ],
        *[
            (
                110 + d,
                3,
                t(20 + d, 9),
                2000.0,
                "transfer",
                "web",
                "FR",
                "3.3.3.3",
                "f1",
                "m5",
                "completed",
            )
            for d in range(5)
        ],
        # User 4: a country missing from the location table ("ZZ"), then a known one.
        (200, 4, t(1, 8), 10.0, "bill", "web", "ZZ", "4.4.4.4", "g1", "m6", "completed"),
        (201, 4, t(1, 9), 10.0, "bill", "web", "GB", "4.4.4.4", "g1", "m6", "completed"),
    ]
)


@pytest.fixture(scope="module")
def features():
    con = connect("duckdb")
    con.con.register("history", HISTORY)
    txf = transaction_features(con.table("history"))
    return {r["tx_id"]: r for r in txf.to_pyarrow().to_pylist()}, user_features(
        txf
    ).to_pyarrow().to_pylist()


def test_every_declared_feature_is_produced(features):
    by_tx, users = features
    assert set(TRANSACTION_FEATURES) <= set(by_tx[1])
    assert set(USER_FEATURES) <= set(users[0])


def test_history_features(features):
    by_tx, _ = features
    assert by_tx[1]["gap_prev_s"] is None  # first transaction: no previous one
    assert by_tx[2]["gap_prev_s"] == 86_400
    assert by_tx[5]["gap_prev_s"] == 20 * 60
    assert by_tx[3]["amount_to_user_median"] == pytest.approx(
        1.0
    )  # median of 20,30,40,9500,9600 is 40
    assert by_tx[4]["amount_to_user_median"] == pytest.approx(9500 / 40)
    assert [by_tx[i]["new_device"] for i in (1, 2, 3, 4, 5)] == [1, 0, 0, 1, 0]
    assert [by_tx[i]["new_country"] for i in (1, 2, 3, 4, 5)] == [1, 0, 0, 1, 1]
    assert by_tx[2]["new_counterparty"] == 1 and by_tx[3]["new_counterparty"] == 0
    assert by_tx[5]["velocity_1h"] == 2 and by_tx[3]["velocity_1h"] == 1
    assert by_tx[5]["country_switch_fast"] == 1 and by_tx[4]["country_switch_fast"] == 0
    assert by_tx[4]["is_night"] == 1 and by_tx[4]["hour"] == 2 and by_tx[1]["is_night"] == 0
    assert by_tx[4]["near_reporting_threshold"] == 1 and by_tx[1]["near_reporting_threshold"] == 0
    assert by_tx[3]["tx_type_share"] == pytest.approx(3 / 5)


def test_user_features(features):
    _, users = features
    u = {r["user_id"]: r for r in users}
    assert u[1]["tx_count"] == 5 and u[2]["tx_count"] == 1
    assert u[1]["amount_max"] == 9600.0
    assert u[1]["distinct_countries"] == 3 and u[1]["distinct_devices"] == 2
    assert u[1]["night_share"] == pytest.approx(0.4)
    assert u[1]["near_threshold_count"] == 2
    assert u[1]["gap_min_s"] == 20 * 60
    assert u[2]["gap_mean_s"] is None  # one transaction: no gap, imputed later by the scaler
    assert u[1]["failed_logins"] == 0


def test_geo_velocity_between_consecutive_countries(features):
    from fraudwatch.contract.locations import great_circle_km, location

    by_tx, _ = features
    assert by_tx[1]["geo_velocity_kmh_log"] is None  # no previous transaction
    assert by_tx[2]["geo_velocity_kmh_log"] == 0.0  # same country
    ng, ru = location("NG"), location("RU")
    assert ng is not None and ru is not None
    km = great_circle_km(*ng, *ru)
    assert by_tx[5]["travel_km"] == pytest.approx(km, rel=1e-9)
    assert math.exp(by_tx[5]["geo_velocity_kmh_log"]) - 1 == pytest.approx(km / (20 / 60))
    # Lagos to Moscow-ish in 20 minutes is impossible; GB to NG in 16 hours is not.
    assert by_tx[5]["impossible_travel"] == 1 and by_tx[4]["impossible_travel"] == 0
    # An unknown country gives null geo features, never an error.
    assert by_tx[201]["geo_velocity_kmh_log"] is None and by_tx[201]["impossible_travel"] == 0


def test_behaviour_change_against_the_users_own_baseline(features):
    by_tx, users = features
    small, large = math.log(21.0), math.log(2001.0)
    assert by_tx[100]["amount_vs_baseline_log"] is None  # nothing earlier
    assert by_tx[107]["amount_vs_baseline_log"] == pytest.approx(0.0)
    assert by_tx[110]["amount_vs_baseline_log"] == pytest.approx(large - small)
    # Recent window: the last 5 (this one included) against up to 32 before them.
    assert by_tx[104]["recent_amount_shift"] is None  # no baseline yet
    assert by_tx[105]["recent_amount_shift"] == pytest.approx(0.0)
    assert by_tx[112]["recent_amount_shift"] == pytest.approx(3 / 5 * (large - small))
    assert by_tx[112]["recent_risky_shift"] == pytest.approx(3 / 5)
    u = {r["user_id"]: r for r in users}
    # 13 transactions, the level steps up after the 8th: the change-point statistic is the
    # rise times sqrt(8 * 5 / 13), the largest over the 12 possible split points.
    assert u[3]["amount_change_point"] == pytest.approx((large - small) * math.sqrt(40 / 13))
    assert u[3]["risky_change_point"] == pytest.approx(math.sqrt(40 / 13))
    assert u[1]["amount_change_point"] > 0 and u[1]["risky_change_point"] > 0
    assert u[3]["max_amount_vs_baseline"] == pytest.approx(large - small)
    assert u[3]["impossible_travel_count"] == 0 and u[1]["impossible_travel_count"] == 1
    assert u[2]["amount_change_point"] is None  # one transaction: no split point


def _activity_rises(times: list[float], end: float) -> list[float]:
    """The activity rise at each split (after each of the user's transactions but the first)
    written out in plain Python: the signed root of the Poisson rate-change likelihood ratio,
    rises only."""
    n, rises = len(times), []
    for k in range(1, n):
        f = min(max((times[k] - times[0]) / (end - times[0]), 1e-6), 1 - 1e-6)
        share = k / n
        llr = k * math.log(share / f) + (n - k) * math.log((1 - share) / (1 - f))
        rises.append(math.sqrt(2 * max(llr, 0.0)) if share < f else 0.0)
    return rises


def _activity_rise_reference(times: list[float], end: float) -> float | None:
    return max(_activity_rises(times, end), default=None)


def _user_rows(user_id: int) -> list[tuple[float, float, float]]:
    """(time, log amount, risky indicator) of one user's HISTORY rows in time order."""
    rows = zip(
        HISTORY["user_id"].to_pylist(),
        HISTORY["ts"].to_pylist(),
        HISTORY["tx_id"].to_pylist(),
        HISTORY["amount"].to_pylist(),
        HISTORY["tx_type"].to_pylist(),
        strict=True,
    )
    return [
        (ts.timestamp(), math.log(amount + 1), float(kind in ("transfer", "withdrawal")))
        for _, ts, _, amount, kind in sorted(
            (r for r in rows if r[0] == user_id), key=lambda r: (r[1], r[2])
        )
    ]


def _behaviour_change_reference(user_id: int) -> float:
    """The joint change point in plain Python: at each split, the amount and risky-type rises
    in units of the user's own spread (floored at 0) and the activity rise, combined as the
    root of their squares; the largest over the splits."""
    rows = _user_rows(user_id)
    end = max(ts.timestamp() for ts in HISTORY["ts"].to_pylist())
    times, amounts, risky = (list(c) for c in zip(*rows, strict=True))
    n = len(rows)

    def rise(values: list[float], k: int) -> float:
        return (sum(values[k:]) / (n - k) - sum(values[:k]) / k) * math.sqrt(k * (n - k) / n)

    amount_sd = statistics.stdev(amounts)
    p = sum(risky) / n
    risky_sd = math.sqrt(p * (1 - p))
    activity = _activity_rises(times, end)
    return max(
        math.sqrt(
            max(rise(amounts, k) / amount_sd, 0.0) ** 2
            + max(rise(risky, k) / risky_sd, 0.0) ** 2
            + activity[k - 1] ** 2
        )
        for k in range(1, n)
    )


def test_behaviour_change_point_joins_amount_risk_and_rate(features):
    _, users = features
    u = {r["user_id"]: r for r in users}
    # User 3 turns from small purchases to large transfers after a quiet spell: amount, risky
    # share and rate step up at one split, and the joint statistic matches the definition.
    assert u[3]["behaviour_change_point"] == pytest.approx(_behaviour_change_reference(3))
    assert u[3]["behaviour_change_point"] > u[3]["activity_change_point"]
    # User 1's large foreign transfers at the end, too; one transaction: no split.
    assert u[1]["behaviour_change_point"] == pytest.approx(_behaviour_change_reference(1))
    assert u[2]["behaviour_change_point"] is None


def test_activity_change_point_sees_a_quiet_account_turn_busy(features):
    _, users = features
    u = {r["user_id"]: r for r in users}
    times = sorted(
        (ts.timestamp(), tx)
        for tx, uid, ts in zip(
            HISTORY["tx_id"].to_pylist(),
            HISTORY["user_id"].to_pylist(),
            HISTORY["ts"].to_pylist(),
            strict=True,
        )
        if uid == 3
    )
    end = max(ts.timestamp() for ts in HISTORY["ts"].to_pylist())
    expected = _activity_rise_reference([ts for ts, _ in times], end)
    assert expected is not None and expected > 1.0
    assert u[3]["activity_change_point"] == pytest.approx(expected)
    # One transaction: no split, no statistic.
    assert u[2]["activity_change_point"] is None


def test_reporting_threshold_comes_from_configuration(monkeypatch):
    from fraudwatch.contract.regulatory import ENV_REPORTING_THRESHOLDS

    con = connect("duckdb")
    con.con.register("history", HISTORY)
    monkeypatch.setenv(ENV_REPORTING_THRESHOLDS, "EUR=20000")
    rows = transaction_features(con.table("history")).to_pyarrow().to_pylist()
    near = {r["tx_id"]: r["near_reporting_threshold"] for r in rows}
    assert near[4] == 0 and near[5] == 0  # 9,500 is no longer near a 20,000 threshold
    explicit = transaction_features(con.table("history"), {"EUR": 2100.0, "*": 1.0})
    near = {r["tx_id"]: r["near_reporting_threshold"] for r in explicit.to_pyarrow().to_pylist()}
    assert near[110] == 1 and near[1] == 0


def test_missing_values_are_imputed_and_scaled_with_training_parameters():
    import numpy as np
    from fraudwatch.models.scaling import FeatureScaler

    train = np.array([[1.0, 10.0], [2.0, np.nan], [3.0, 30.0], [4.0, 40.0]])
    scaler = FeatureScaler.fit(["a", "b"], train)
    z = scaler.transform(np.array([[np.nan, 1e9]]))
    assert z[0, 0] == 0.0  # missing → the training median → 0 after centring
    assert 0 < z[0, 1] <= 50.0  # extreme values are clipped, never inf
    assert scaler.impute(np.array([[np.nan, 5.0]]))[0, 0] == pytest.approx(2.5, rel=0.05)
