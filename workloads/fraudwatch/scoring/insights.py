"""Where flagged anomalies concentrate: by hour, transaction type, persona, country, channel.

One Ibis aggregate per dimension over the ranked transactions, so the same rule runs on DuckDB
and, with `--engine spark`, on Spark; only the per-group counts come back to the driver."""

from __future__ import annotations

import ibis.expr.types as ir

DIMENSIONS = {
    "by_hour": "hour",
    "by_tx_type": "tx_type",
    "by_persona": "persona",
    "by_country": "country",
    "by_channel": "channel",
}


def _counts(t: ir.Table, column: str) -> list[tuple[str | None, int, int]]:
    """(key as text, flagged, total) per value of `column`: most flagged first, then by key
    (a missing key last)."""
    rows = (
        t.group_by(key=t[column].cast("string"))
        .aggregate(flagged=t.flagged.cast("int64").sum(), total=t.count())
        .to_pyarrow()
        .to_pylist()
    )
    counts = [(r["key"], int(r["flagged"] or 0), int(r["total"])) for r in rows]
    return sorted(counts, key=lambda r: (-r[1], r[0] is None, r[0] or ""))


def insights(scored_transactions: ir.Table) -> dict:
    """For each dimension: flagged count, total, flagged share and lift over the overall share."""
    counts = {key: _counts(scored_transactions, column) for key, column in DIMENSIONS.items()}
    # Every dimension's groups (a missing key is a group too) add up to all the rows.
    some = next(iter(counts.values()))
    flagged, total = sum(r[1] for r in some), sum(r[2] for r in some)
    overall = flagged / total if total else 0.0
    out: dict = {"overall_flagged_share": round(float(overall), 6)}
    for key in DIMENSIONS:
        out[key] = [
            {
                "key": k,
                "flagged": f,
                "total": n,
                "share": round(f / n, 6) if n else 0.0,
                "lift": round((f / n) / overall, 3) if n and overall else 0.0,
            }
            for k, f, n in counts[key]
        ]
    return out
