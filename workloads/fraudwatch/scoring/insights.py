"""Where flagged anomalies concentrate: by hour, transaction type, persona, country, channel."""

from __future__ import annotations

import duckdb

DIMENSIONS = {
    "by_hour": "hour",
    "by_tx_type": "tx_type",
    "by_persona": "persona",
    "by_country": "country",
    "by_channel": "channel",
}


def insights(con: duckdb.DuckDBPyConnection, scored_transactions: str) -> dict:
    """For each dimension: flagged count, total, flagged share and lift over the overall share."""
    overall = (
        con.sql(
            f"SELECT avg(flagged::INT) FROM read_parquet('{scored_transactions}', hive_partitioning = false)"
        ).fetchall()[0][0]
        or 0.0
    )
    out: dict = {"overall_flagged_share": round(float(overall), 6)}
    for key, column in DIMENSIONS.items():
        rows = con.sql(
            f"""
            SELECT CAST({column} AS VARCHAR) AS key, sum(flagged::INT) AS flagged, count(*) AS total
            FROM read_parquet('{scored_transactions}', hive_partitioning = false)
            GROUP BY 1 ORDER BY flagged DESC, key
            """
        ).fetchall()
        out[key] = [
            {
                "key": k,
                "flagged": int(f),
                "total": int(t),
                "share": round(f / t, 6) if t else 0.0,
                "lift": round((f / t) / overall, 3) if t and overall else 0.0,
            }
            for k, f, t in rows
        ]
    return out
