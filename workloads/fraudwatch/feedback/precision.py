"""Measured alert precision: the share of flagged users that analysts later confirmed as
fraud, per model version and over time (docs/feedback.md).

Dispositions are made on flagged users (the admin page's queue lists them), so among the
users a model version flagged and an analyst judged, precision = fraud / (fraud +
legitimate); `unsure` verdicts are counted but left out of the ratio. Each user counts once
per version and day: their latest verdict.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass

from fraudwatch.feedback.labels import Disposition


@dataclass(frozen=True)
class PrecisionRow:
    model_version: str
    day: str  # the UTC day the verdicts were recorded ("all" in a version's summary)
    fraud: int
    legitimate: int
    unsure: int

    @property
    def judged(self) -> int:
        return self.fraud + self.legitimate

    @property
    def precision(self) -> float | None:
        return round(self.fraud / self.judged, 4) if self.judged else None

    def as_json(self) -> dict:
        return {**asdict(self), "judged": self.judged, "precision": self.precision}


def _latest(dispositions: Iterable[Disposition], by_day: bool) -> dict[tuple, Disposition]:
    latest: dict[tuple, Disposition] = {}
    for d in sorted(dispositions, key=lambda d: d.ts):
        day = d.ts.date().isoformat() if by_day else "all"
        latest[(d.model_version or "unknown", day, d.user_id)] = d
    return latest


def _rows(latest: dict[tuple, Disposition]) -> list[PrecisionRow]:
    counts: dict[tuple[str, str], dict[str, int]] = {}
    for (version, day, _), d in latest.items():
        counts.setdefault((version, day), {"fraud": 0, "legitimate": 0, "unsure": 0})[d.label] += 1
    return [PrecisionRow(v, day, **c) for (v, day), c in sorted(counts.items())]


def alert_precision(dispositions: Iterable[Disposition]) -> list[PrecisionRow]:
    """One row per model version and day of verdict, sorted by version then day."""
    return _rows(_latest(dispositions, by_day=True))


def precision_of(dispositions: Iterable[Disposition], version: str | None) -> PrecisionRow:
    """The measured precision of one model version over all its verdicts (None: verdicts
    recorded without a version, named "unknown"). Callers may narrow `dispositions` first,
    e.g. to the users one alert rule acted on (intervention/precision_metrics.py)."""
    rows = _rows(_latest((d for d in dispositions if d.model_version == version), by_day=False))
    return rows[0] if rows else PrecisionRow(version or "unknown", "all", 0, 0, 0)


def version_precision(dispositions: Iterable[Disposition], version: str) -> dict:
    """The measured precision of one model version over all its verdicts (for the registry)."""
    return precision_of(dispositions, version).as_json()


def budget_metrics(user_ids, flagged, labels: dict[int, int]) -> dict:
    """How a scored run's alert budget (its `flagged` users: the top THRESHOLDS.flagged_share)
    fares on labelled users: `precision_at_budget` = confirmed fraud / labelled users in the
    budget, `fraud_recall` = share of the confirmed-fraud users that are in the budget (None
    when there is nothing to divide by)."""
    in_budget = {int(u) for u, f in zip(user_ids, flagged, strict=True) if f}
    present = {int(u) for u in user_ids}
    labelled = {u: y for u, y in labels.items() if u in present}
    fraud = {u for u, y in labelled.items() if y == 1}
    judged_in_budget = [u for u in labelled if u in in_budget]
    hits = sum(labelled[u] for u in judged_in_budget)
    return {
        "labelled": len(labelled),
        "confirmed_fraud": len(fraud),
        "labelled_in_budget": len(judged_in_budget),
        "precision_at_budget": round(hits / len(judged_in_budget), 4) if judged_in_budget else None,
        "fraud_recall": round(len(fraud & in_budget) / len(fraud), 4) if fraud else None,
    }
