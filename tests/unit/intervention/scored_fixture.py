"""Small scored results that follow the scored-output contract (contract/scored_output.py,
docs/data-contract.md) exactly, written with pyarrow."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from fraudwatch.contract.scored_output import (
    MODEL_SCORE_COLUMNS,
    TRANSACTION_COLUMNS,
    USER_COLUMNS,
    score_column,
)
from fraudwatch.models import MODEL_NAMES

PERSONAS = ["loose-passive", "tight-passive", "loose-aggressive", "tight-aggressive"]
TX_TYPES = ["payment", "purchase", "transfer", "withdrawal"]
COUNTRIES = ["DE", "FR", "NL", "US"]
N_USERS = 40
TX_PER_USER = 5
#: Models whose scores the fixture has, each this far from the ensemble's for a user; the
#: other models' columns are null (not run), as the contract allows.
MODEL_OFFSETS = {"iforest": 0.01, "autoencoder": -0.02}


def user_score(user_id: int) -> float:
    # user 1 is the most anomalous; scores fall evenly so thresholds are easy to hit
    return round(1.0 - (user_id - 1) / N_USERS, 4)


def write_scored(root: Path) -> Path:
    """Write SCORED/users.parquet and SCORED/transactions/part-0.parquet under root."""
    root.mkdir(parents=True, exist_ok=True)
    ids = list(range(1, N_USERS + 1))
    scores = [user_score(u) for u in ids]
    scenario = ["account_takeover" if u <= 3 else ("card_testing" if u <= 5 else None) for u in ids]
    model_scores = {
        score_column(name): pa.array(
            [None] * N_USERS
            if name not in MODEL_OFFSETS
            else [min(1.0, max(0.0, s + MODEL_OFFSETS[name])) for s in scores],
            pa.float64(),
        )
        for name in MODEL_NAMES
    }
    users = pa.table(
        {
            "rank": pa.array(ids, pa.int64()),
            "user_id": pa.array(ids, pa.int64()),
            "persona": pa.array([PERSONAS[u % 4] for u in ids]),
            "ensemble_score": pa.array(scores, pa.float64()),
            **model_scores,
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
    assert set(USER_COLUMNS) <= set(users.column_names), "the fixture lacks a contract column"
    pq.write_table(users, root / "users.parquet")
    start = datetime(2026, 1, 1, tzinfo=UTC)
    rows: dict[str, list] = {k: [] for k in TRANSACTION_COLUMNS}
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
            for name in MODEL_NAMES:
                rows[score_column(name)].append(score if name in MODEL_OFFSETS else None)
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
        **{column: pa.float64() for column in MODEL_SCORE_COLUMNS},
        "top_features": pa.list_(pa.string()),
        "scenario": pa.string(),
    }
    tx = pa.table({k: pa.array(v, types.get(k)) for k, v in rows.items()})
    (root / "transactions").mkdir(exist_ok=True)
    pq.write_table(tx, root / "transactions" / "part-0.parquet")
    return root
