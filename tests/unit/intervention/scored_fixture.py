"""Small scored results that follow docs/data-contract.md exactly, written with pyarrow."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

PERSONAS = ["loose-passive", "tight-passive", "loose-aggressive", "tight-aggressive"]
TX_TYPES = ["payment", "purchase", "transfer", "withdrawal"]
COUNTRIES = ["DE", "FR", "NL", "US"]
N_USERS = 40
TX_PER_USER = 5


def user_score(user_id: int) -> float:
    # user 1 is the most anomalous; scores fall evenly so thresholds are easy to hit
    return round(1.0 - (user_id - 1) / N_USERS, 4)


def write_scored(root: Path) -> Path:
    """Write SCORED/users.parquet and SCORED/transactions/part-0.parquet under root."""
    root.mkdir(parents=True, exist_ok=True)
    ids = list(range(1, N_USERS + 1))
    scores = [user_score(u) for u in ids]
    scenario = ["account_takeover" if u <= 3 else ("card_testing" if u <= 5 else None) for u in ids]
    users = pa.table(
        {
            "rank": pa.array(ids, pa.int64()),
            "user_id": pa.array(ids, pa.int64()),
            "persona": pa.array([PERSONAS[u % 4] for u in ids]),
            "ensemble_score": pa.array(scores, pa.float64()),
            "iforest_score": pa.array([min(1.0, s + 0.01) for s in scores], pa.float64()),
            "autoencoder_score": pa.array([max(0.0, s - 0.02) for s in scores], pa.float64()),
            "lstm_score": pa.array([None] * N_USERS, pa.float64()),
            "flagged": pa.array([u <= 4 for u in ids]),
            "reasons": pa.array(
                [
                    "amount_max far above persona; new country"
                    if u <= 5
                    else "tx_count slightly high"
                    for u in ids
                ]
            ),
            "top_features": pa.array(
                [["amount_max", "n_countries"] for _ in ids], pa.list_(pa.string())
            ),
            "tx_count": pa.array([TX_PER_USER] * N_USERS, pa.int64()),
            "amount_mean": pa.array([50.0 + u for u in ids], pa.float64()),
            "amount_max": pa.array([500.0 + 10 * u for u in ids], pa.float64()),
            "label": pa.array([1 if u <= 5 else 0 for u in ids], pa.int8()),
            "scenario": pa.array(scenario, pa.string()),
        }
    )
    pq.write_table(users, root / "users.parquet")
    start = datetime(2026, 1, 1, tzinfo=UTC)
    rows: dict[str, list] = {
        k: []
        for k in (
            "rank",
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
            "persona",
            "hour",
            "ensemble_score",
            "iforest_score",
            "autoencoder_score",
            "lstm_score",
            "flagged",
            "reasons",
            "top_features",
            "label",
            "scenario",
        )
    }
    for u in ids:
        for k in range(TX_PER_USER):
            tx_id = u * 100 + k
            ts = start + timedelta(days=k, hours=(u + k) % 24)
            score = max(0.0, user_score(u) - 0.05 * k)
            rows["tx_id"].append(tx_id)
            rows["user_id"].append(u)
            rows["ts"].append(ts)
            rows["amount"].append(10.0 * (k + 1) + u)
            rows["currency"].append("EUR")
            rows["tx_type"].append(TX_TYPES[(u + k) % 4])
            rows["channel"].append("web")
            rows["country"].append(COUNTRIES[(u * k) % 4])
            rows["ip"].append(f"192.0.2.{u}")
            rows["device_id"].append(f"dev-{u}")
            rows["counterparty"].append(f"cp-{k}")
            rows["status"].append("completed")
            rows["persona"].append(PERSONAS[u % 4])
            rows["hour"].append(ts.hour)
            rows["ensemble_score"].append(score)
            rows["iforest_score"].append(score)
            rows["autoencoder_score"].append(score)
            rows["lstm_score"].append(None)
            rows["flagged"].append(score >= 0.9)
            rows["reasons"].append("amount far above usual" if score >= 0.9 else "")
            rows["top_features"].append(["amount"])
            rows["label"].append(1 if u <= 5 else 0)
            rows["scenario"].append(scenario[u - 1])
    order = sorted(range(len(rows["tx_id"])), key=lambda i: -rows["ensemble_score"][i])
    rows = {k: [v[i] for i in order] for k, v in rows.items() if k != "rank"}
    rows["rank"] = list(range(1, len(order) + 1))
    types = {
        "rank": pa.int64(),
        "tx_id": pa.int64(),
        "user_id": pa.int64(),
        "ts": pa.timestamp("us", tz="UTC"),
        "hour": pa.int32(),
        "label": pa.int8(),
        "lstm_score": pa.float64(),
        "top_features": pa.list_(pa.string()),
        "scenario": pa.string(),
    }
    tx = pa.table({k: pa.array(v, types.get(k)) for k, v in rows.items()})
    (root / "transactions").mkdir(exist_ok=True)
    pq.write_table(tx, root / "transactions" / "part-0.parquet")
    return root
