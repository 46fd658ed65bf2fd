"""How long each class of data is kept: the one retention policy every store follows.

The values live in the pipeline configuration under `privacy.retention` (days per data class,
pipelines/config.py); `fraudwatch privacy retain` enforces them in every store
(docs/privacy.md, "Retention"). A value that is not a whole number of days of at least 1
raises a UserError naming the key and the fix.

A day's data is older than a policy of N days when the whole day lies before the cut-off
`today - N days`: with N = 90 and today 2026-12-07 the cut-off is 2026-09-08, the partition of
2026-09-07 is removed and the partition of 2026-09-08 is kept.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import UTC, date, datetime, time, timedelta

from fraudwatch.errors import UserError

#: The configuration section the values live in (for messages and docs).
SECTION = "privacy.retention"


@dataclass(frozen=True)
class RetentionPolicy:
    """Days each data class is kept. The defaults and their reasons: docs/privacy.md."""

    #: Raw events (Parquet partitions of transactions, logins, API calls; the Kafka topics,
    #: whose retention.ms is capped at this value; the day's feature folders).
    raw_events: int = 90
    #: Scored results (scored day folders, Elasticsearch fraudwatch-transactions/-users
    #: indices, Tableau extracts).
    scored_results: int = 90
    #: Alerts and interventions (the day's reports and alerts.json; the state store's
    #: dispositions, decisions, resolved approvals, idempotency records and profiles of
    #: accounts that are neither locked nor under step-up).
    alerts_and_interventions: int = 365
    #: The audit log's copies outside the state store (Elasticsearch fraudwatch-audit-*).
    audit: int = 1825

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            # bool is an int in Python: `raw_events: yes` must not mean one day.
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise UserError(
                    f"{SECTION}.{f.name} = {value!r} is not a number of days; set it to a "
                    f"whole number of at least 1 (default {f.default}, docs/privacy.md)"
                )

    @classmethod
    def data_classes(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls))

    def days(self, data_class: str) -> int:
        if data_class not in self.data_classes():
            raise UserError(
                f"unknown data class {data_class!r}; known: {', '.join(self.data_classes())}"
            )
        return int(getattr(self, data_class))

    def cutoff(self, data_class: str, today: date) -> date:
        """The first day that is kept: every day before it is removed."""
        return today - timedelta(days=self.days(data_class))

    def cutoff_time(self, data_class: str, today: date) -> datetime:
        """The cut-off as a UTC instant (midnight at the start of the first kept day)."""
        return datetime.combine(self.cutoff(data_class, today), time(0), tzinfo=UTC)

    def milliseconds(self, data_class: str) -> int:
        return self.days(data_class) * 86_400_000


def check_against_retraining(policy: RetentionPolicy, window_days: int) -> None:
    """Retraining reads `retrain.window_days` days of raw events: a shorter raw retention
    would make every weekly retraining fail for want of data."""
    if policy.raw_events < window_days:
        raise UserError(
            f"{SECTION}.raw_events = {policy.raw_events} is shorter than retrain.window_days "
            f"= {window_days}: retraining would find too few days; raise "
            f"{SECTION}.raw_events to at least {window_days} or lower retrain.window_days"
        )
