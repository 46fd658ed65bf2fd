"""Turn alert webhook bodies (Grafana alerting, Elasticsearch Watcher) into alert signals.

Each alert is checked on its own: a bad one becomes an :class:`InvalidAlert` naming its
problem, and the others of the batch are still acted on. Only a body that is not the
documented shape at all (no `alerts` list, no search hits) is a :class:`PayloadError`.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

SCORE_KEYS = ("ensemble_score", "score")
MAX_USER_ID = 2**63 - 1
MAX_ALERT_ID = 200
MAX_SUMMARY = 300
_DIGITS = re.compile(r"[0-9]{1,19}")  # ASCII digits only: not "١٦٤", not "1_6_4"
_DECIMAL = re.compile(r"[0-9]+(?:\.[0-9]*)?(?:[eE][-+]?[0-9]+)?|\.[0-9]+(?:[eE][-+]?[0-9]+)?")


class PayloadError(ValueError):
    """The webhook body is not the documented shape; the message says what is missing."""


def clean_text(value: Any, limit: int) -> str:
    """Text safe to store, hash and echo: lone surrogates escaped (`\\ud800`), at most
    `limit` characters (longer text ends in `…`)."""
    text = value if isinstance(value, str) else str(value)
    text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text if len(text) <= limit else text[: limit - 1] + "…"


@dataclass(frozen=True)
class AlertSignal:
    """One well-formed alert about one account."""

    index: int
    user_id: int
    score: float | None  # the score the alert states: a hint, the service re-reads its own
    alert_id: str
    summary: str
    started_at: str = ""  # Grafana's startsAt: with the fingerprint, one firing of an alert


@dataclass(frozen=True)
class InvalidAlert:
    """An alert that cannot be acted on, and why."""

    index: int
    problem: str
    alert_id: str = ""
    user_id: str = ""  # as sent (cleaned), when it was a scalar


def _as_user_id(value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError(f"user_id {value!r} is not a whole number")
    if isinstance(value, int) and 0 <= value <= MAX_USER_ID:
        return value
    if isinstance(value, str) and _DIGITS.fullmatch(value) and int(value) <= MAX_USER_ID:
        return int(value)
    shown = clean_text(repr(value), 40)
    raise ValueError(f"user_id {shown} is not a whole number from 0 to 2^63-1 in ASCII digits")


def _as_score(value: Any) -> float:
    score = float("nan")
    if (isinstance(value, int | float) and not isinstance(value, bool)) or (
        isinstance(value, str) and _DECIMAL.fullmatch(value.strip())
    ):
        score = float(value)
    if math.isnan(score):
        raise ValueError(f"score {clean_text(repr(value), 40)} is not a number")
    if not 0.0 <= score <= 1.0:
        raise ValueError(f"score {score} is outside [0, 1]")
    return score


def _user_text(value: Any) -> str:
    return clean_text(value, 40) if isinstance(value, str | int | float) else ""


def _alert_id(value: str) -> str:
    if len(value) > MAX_ALERT_ID:
        raise ValueError(f"alert id is longer than {MAX_ALERT_ID} characters")
    return clean_text(value, MAX_ALERT_ID)


def parse_grafana(body: Any) -> list[AlertSignal | InvalidAlert]:
    """Grafana's webhook contact point payload: firing alerts carry `user_id` as a label; the
    score they state is the `ensemble_score` label/annotation, else `values["score"]` (the
    rule's expression named `score`), else the only entry of `values`. Resolved alerts are
    returned as invalid ("resolved"): undoing is a human decision."""
    if not isinstance(body, dict) or not isinstance(body.get("alerts"), list):
        raise PayloadError("Grafana payload must be an object with an 'alerts' list")
    return [_grafana_alert(i, alert) for i, alert in enumerate(body["alerts"])]


def _grafana_alert(i: int, alert: Any) -> AlertSignal | InvalidAlert:
    where = f"alerts[{i}]"
    if not isinstance(alert, dict):
        return InvalidAlert(i, f"{where} must be an object")
    labels = alert.get("labels") or {}
    annotations = alert.get("annotations") or {}
    raw_id = alert.get("fingerprint") or (
        labels.get("alertname") if isinstance(labels, dict) else None
    )
    alert_id = clean_text(raw_id if raw_id is not None else f"grafana-{i}", MAX_ALERT_ID)
    user_text = _user_text(labels.get("user_id")) if isinstance(labels, dict) else ""

    def invalid(problem: str) -> InvalidAlert:
        return InvalidAlert(i, f"{where}: {problem}", alert_id, user_text)

    if not isinstance(labels, dict) or not isinstance(annotations, dict):
        return invalid("labels and annotations must be objects")
    if alert.get("status", "firing") != "firing":
        return invalid("resolved: undoing an intervention is a human decision")
    if "user_id" not in labels:
        return invalid("label 'user_id' is missing; add it to the alert rule")
    raw = next((src[k] for k in SCORE_KEYS for src in (labels, annotations) if k in src), None)
    if raw is None:
        values = alert.get("values") or {}
        if not isinstance(values, dict):
            return invalid("'values' must be an object")
        named = [values[k] for k in SCORE_KEYS if k in values]
        # A rule's threshold expression (0/1) sits beside the score in `values`, so only a
        # named entry or a lone value is unambiguous.
        raw = named[0] if named else (next(iter(values.values())) if len(values) == 1 else None)
    started = alert.get("startsAt", "")
    try:
        user_id = _as_user_id(labels["user_id"])
        score = None if raw is None else _as_score(raw)
        alert_id = _alert_id(str(raw_id if raw_id is not None else f"grafana-{i}"))
        if not isinstance(started, str) or len(started) > 64:
            raise ValueError("startsAt must be a time stamp")
    except ValueError as err:
        return invalid(str(err))
    summary = clean_text(
        annotations.get("summary") or labels.get("alertname") or "Grafana alert", MAX_SUMMARY
    )
    return AlertSignal(i, user_id, score, alert_id, summary, clean_text(started, 64))


def parse_watcher(body: Any) -> list[AlertSignal | InvalidAlert]:
    """The body of a Watcher webhook action: `{"watch_id": ..., "payload": <search result>}`
    (or the search result itself); every hit's `_source` carries user_id and ensemble_score."""
    if not isinstance(body, dict):
        raise PayloadError("Watcher payload must be a JSON object")
    watch_id = body.get("watch_id") or "watch"
    result = body.get("payload", body)
    hits = result.get("hits") if isinstance(result, dict) else None
    if isinstance(hits, dict):
        hits = hits.get("hits")
    if not isinstance(hits, list):
        raise PayloadError("Watcher payload needs 'payload.hits.hits' (a search result)")
    started = body.get("triggered_time", "")
    return [_watcher_hit(i, hit, watch_id, started) for i, hit in enumerate(hits)]


def _watcher_hit(i: int, hit: Any, watch_id: Any, started: Any) -> AlertSignal | InvalidAlert:
    where = f"hits[{i}]"
    doc_id = hit.get("_id", i) if isinstance(hit, dict) else i
    raw_id = f"{watch_id}:{doc_id}"
    alert_id = clean_text(raw_id, MAX_ALERT_ID)
    source = hit.get("_source") if isinstance(hit, dict) else None
    user_text = _user_text(source.get("user_id")) if isinstance(source, dict) else ""

    def invalid(problem: str) -> InvalidAlert:
        return InvalidAlert(i, f"{where}: {problem}", alert_id, user_text)

    if not isinstance(source, dict):
        return invalid("'_source' object is missing")
    if "user_id" not in source:
        return invalid("'_source.user_id' is missing")
    raw = next((source[k] for k in SCORE_KEYS if k in source), None)
    try:
        user_id = _as_user_id(source["user_id"])
        score = None if raw is None else _as_score(raw)
        _alert_id(raw_id)
        if not isinstance(started, str) or len(started) > 64:
            raise ValueError("triggered_time must be a time stamp")
    except ValueError as err:
        return invalid(str(err))
    summary = clean_text(f"Watcher {watch_id}", MAX_SUMMARY)
    return AlertSignal(i, user_id, score, alert_id, summary, clean_text(started, 64))
