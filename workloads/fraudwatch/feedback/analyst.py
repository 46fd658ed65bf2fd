"""A simulated analyst for generated data (docs/feedback.md): it reviews the users a scored
run flagged and gives each a verdict from the generator's ground truth (the `label` and
`scenario` columns the scored output carries for generated data), with a configurable
coverage (share of flagged users reviewed), error rate (share of verdicts flipped) and
delay (days between the user's last transaction in the run and the verdict).

Besides the queue, the analyst can review a control sample: a random share of the users the
run did NOT flag (`control_share`). Fraud teams do this to measure the fraud their alerts miss;
here it also gives the retraining labels below the alert line, without which every label is
about a user the current model already ranks at the top (docs/feedback.md, "Selection bias").

Every per-user draw comes from a generator seeded by (seed, user, the run's last day), so the
same scored run and seed give the same dispositions, whatever the order or the other runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, timedelta
from pathlib import Path

import duckdb
import numpy as np

from fraudwatch.contract.scored_directory import open_scored
from fraudwatch.errors import UserError
from fraudwatch.feedback.labels import Disposition

ACTOR = "simulated-analyst"


@dataclass(frozen=True)
class AnalystSettings:
    seed: int = 0
    coverage: float = 0.8  # share of flagged users the analyst reviews
    error_rate: float = 0.05  # share of reviews whose verdict is the wrong one
    delay_days: float = 2.0  # mean days from the user's last transaction to the verdict
    control_share: float = 0.0  # share of the users NOT flagged reviewed as a control sample

    def __post_init__(self) -> None:
        for key in ("coverage", "error_rate", "control_share"):
            value = getattr(self, key)
            if not 0 <= value <= 1:
                raise UserError(f"--{key.replace('_', '-')} {value} must be between 0 and 1")
        if self.delay_days < 0:
            raise UserError(f"--delay-days {self.delay_days} must be >= 0 (days after the alert)")


def _reviewable(scored: Path, control: bool) -> list[tuple]:
    """(user_id, label, scenario, last ts, top tx_id, flagged) of each flagged user by rank,
    then, when `control`, of every user not flagged, by user id."""
    users = scored / "users.parquet"
    transactions = scored / "transactions" / "*.parquet"
    if not users.is_file() or not list(scored.glob("transactions/*.parquet")):
        raise UserError(
            f"--scored {scored} is not a directory written by `fraudwatch score`; run it first"
        )
    db = duckdb.connect()
    db.sql("SET TimeZone = 'UTC'")
    columns = {r[0] for r in db.sql(f"DESCRIBE SELECT * FROM read_parquet('{users}')").fetchall()}
    labelled = (
        db.sql(f"SELECT count(label) FROM read_parquet('{users}')").fetchall()[0][0]
        if "label" in columns
        else 0
    )
    if not labelled:
        raise UserError(
            f"--scored {scored} has no ground truth (label column): the simulated analyst "
            "needs data from `fraudwatch generate`"
        )
    return db.sql(
        f"""
        WITH tx AS (
            SELECT user_id, max(ts) AS last_ts, arg_max(tx_id, ensemble_score) AS top_tx
            FROM read_parquet('{transactions}', hive_partitioning = false) GROUP BY user_id
        )
        SELECT u.user_id, coalesce(u.label, 0), u.scenario, tx.last_ts, tx.top_tx, u.flagged
        FROM read_parquet('{users}') u JOIN tx USING (user_id)
        WHERE u.flagged OR {control}
        ORDER BY NOT u.flagged, CASE WHEN u.flagged THEN u.rank ELSE u.user_id END
        """
    ).fetchall()


def simulate(scored: Path | str, settings: AnalystSettings) -> list[Disposition]:
    """The simulated analyst's dispositions for the flagged users of one scored run."""
    scored = Path(scored)
    model_version = open_scored(scored).model_version
    out = []
    for user_id, label, scenario, last_ts, top_tx, flagged in _reviewable(
        scored, settings.control_share > 0
    ):
        last = (last_ts if last_ts.tzinfo else last_ts.replace(tzinfo=UTC)).astimezone(UTC)
        rng = np.random.default_rng([settings.seed, int(user_id), last.date().toordinal()])
        reviewed, wrong, delay = rng.random(3)
        if reviewed >= (settings.coverage if flagged else settings.control_share):
            continue
        fraud = bool(label) != (wrong < settings.error_rate)
        review = "simulated review" if flagged else "simulated control review"
        reason = (
            f"{review}: {scenario or 'suspicious activity'}"
            if fraud
            else f"{review}: activity explained"
        )
        out.append(
            Disposition(
                user_id=int(user_id),
                label="fraud" if fraud else "legitimate",
                ts=last + timedelta(days=settings.delay_days * (0.5 + delay)),
                tx_id=None if top_tx is None else str(top_tx),
                reason=reason,
                model_version=model_version,
                actor=ACTOR,
            )
        )
    return out
