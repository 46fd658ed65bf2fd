"""The one home of the score thresholds: what is flagged, alerted, stepped up, locked and
critical. Everything that compares an ensemble score with a number reads it from here: the
batch job (flagged share), the stream (flagged), the rendered Grafana rule (alert), the
intervention policy's defaults (step-up, lock), the daily pipeline's alert conditions
(critical); every model version records the values in its manifest (docs/models.md).

Scores are calibrated (models/calibration.py): a score s means "more anomalous than a share s
of the training population", so each threshold is an alert budget: at 0.99 about 1 % of
ordinary traffic crosses it, at 0.999 about 0.1 %.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from fraudwatch.errors import UserError


@dataclass(frozen=True)
class ScoreThresholds:
    flagged_share: float = 0.01  # the batch job flags this top share of users and transactions
    alert_at: float = 0.99  # the Grafana rule sends a user with a transaction at/above this
    step_up_at: float = 0.99  # the intervention policy demands step-up authentication
    lock_at: float = 0.999  # the intervention policy locks the account
    critical_at: float = 0.9999  # the daily pipeline counts critical transactions

    def __post_init__(self) -> None:
        for key, value in asdict(self).items():
            if not 0 < value < 1:
                raise UserError(f"threshold {key} = {value} must be between 0 and 1 (exclusive)")
        if self.lock_at < self.step_up_at:
            raise UserError(
                f"threshold lock_at = {self.lock_at} is below step_up_at = {self.step_up_at}: "
                "locking must need a higher score than step-up; raise lock_at"
            )

    @property
    def flag_at(self) -> float:
        """The score at which a single scored event (stream, decision) counts as flagged: the
        calibrated counterpart of the batch job's flagged share."""
        return round(1.0 - self.flagged_share, 12)

    def as_json(self) -> dict:
        return {**asdict(self), "flag_at": self.flag_at}


THRESHOLDS = ScoreThresholds()
