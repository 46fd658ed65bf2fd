"""Feature definitions on a hand-made history whose answers are known."""

from __future__ import annotations

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


def test_missing_values_are_imputed_and_scaled_with_training_parameters():
    import numpy as np
    from fraudwatch.models.scaling import FeatureScaler

    train = np.array([[1.0, 10.0], [2.0, np.nan], [3.0, 30.0], [4.0, 40.0]])
    scaler = FeatureScaler.fit(["a", "b"], train)
    z = scaler.transform(np.array([[np.nan, 1e9]]))
    assert z[0, 0] == 0.0  # missing → the training median → 0 after centring
    assert 0 < z[0, 1] <= 50.0  # extreme values are clipped, never inf
    assert scaler.impute(np.array([[np.nan, 5.0]]))[0, 0] == pytest.approx(2.5, rel=0.05)
