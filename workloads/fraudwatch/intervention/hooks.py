"""Turn alert webhook bodies (Grafana alerting, Elasticsearch Watcher) into alert signals."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

SCORE_KEYS = ("ensemble_score", "score")


class PayloadError(ValueError):
    """The webhook body is not the documented shape; the message says what is missing."""


@dataclass(frozen=True)
class AlertSignal:
    user_id: int
    score: float
    alert_id: str
    summary: str


def _as_user_id(value: Any, where: str) -> int:
    try:
        return int(str(value))
    except (TypeError, ValueError):
        raise PayloadError(f"{where}: user_id {value!r} is not a whole number") from None


def _as_score(value: Any, where: str) -> float:
    try:
        score = float(value)
    except (TypeError, ValueError):
        raise PayloadError(f"{where}: score {value!r} is not a number") from None
    if not 0.0 <= score <= 1.0:
        raise PayloadError(f"{where}: score {score} is outside [0, 1]")
    return score


def parse_grafana(body: Any) -> list[AlertSignal]:
    """Grafana's webhook contact point payload: firing alerts carry `user_id` as a label; the
    score is the `ensemble_score` label/annotation, else `values["score"]` (the rule's
    expression named `score`), else the only entry of `values`."""
    if not isinstance(body, dict) or not isinstance(body.get("alerts"), list):
        raise PayloadError("Grafana payload must be an object with an 'alerts' list")
    signals = []
    for i, alert in enumerate(body["alerts"]):
        where = f"alerts[{i}]"
        if not isinstance(alert, dict):
            raise PayloadError(f"{where} must be an object")
        if alert.get("status", "firing") != "firing":
            continue  # resolved alerts undo nothing: a human decides that
        labels = alert.get("labels") or {}
        annotations = alert.get("annotations") or {}
        if not isinstance(labels, dict) or not isinstance(annotations, dict):
            raise PayloadError(f"{where}: labels and annotations must be objects")
        if "user_id" not in labels:
            raise PayloadError(f"{where}: label 'user_id' is missing; add it to the alert rule")
        user_id = _as_user_id(labels["user_id"], where)
        raw = next((src[k] for k in SCORE_KEYS for src in (labels, annotations) if k in src), None)
        if raw is None:
            values = alert.get("values") or {}
            if not isinstance(values, dict):
                raise PayloadError(f"{where}: 'values' must be an object")
            named = [values[k] for k in SCORE_KEYS if k in values]
            # A rule's threshold expression (0/1) sits beside the score in `values`, so only
            # a named entry or a lone value is unambiguous.
            raw = named[0] if named else (next(iter(values.values())) if len(values) == 1 else None)
            if raw is None:
                raise PayloadError(
                    f"{where}: no score: add label 'ensemble_score' to the alert rule or name "
                    "its reduce expression 'score'"
                )
        alert_id = str(alert.get("fingerprint") or labels.get("alertname") or f"grafana-{i}")
        summary = str(annotations.get("summary") or labels.get("alertname") or "Grafana alert")
        signals.append(AlertSignal(user_id, _as_score(raw, where), alert_id, summary))
    return signals


def parse_watcher(body: Any) -> list[AlertSignal]:
    """The body of a Watcher webhook action: `{"watch_id": ..., "payload": <search result>}`
    (or the search result itself); every hit's `_source` carries user_id and ensemble_score."""
    if not isinstance(body, dict):
        raise PayloadError("Watcher payload must be a JSON object")
    watch_id = str(body.get("watch_id") or "watch")
    result = body.get("payload", body)
    hits = result.get("hits") if isinstance(result, dict) else None
    if isinstance(hits, dict):
        hits = hits.get("hits")
    if not isinstance(hits, list):
        raise PayloadError("Watcher payload needs 'payload.hits.hits' (a search result)")
    signals = []
    for i, hit in enumerate(hits):
        where = f"hits[{i}]"
        source = hit.get("_source") if isinstance(hit, dict) else None
        if not isinstance(source, dict):
            raise PayloadError(f"{where}: '_source' object is missing")
        if "user_id" not in source:
            raise PayloadError(f"{where}: '_source.user_id' is missing")
        raw = next((source[k] for k in SCORE_KEYS if k in source), None)
        if raw is None:
            raise PayloadError(f"{where}: '_source.ensemble_score' is missing")
        signals.append(
            AlertSignal(
                _as_user_id(source["user_id"], where),
                _as_score(raw, where),
                f"{watch_id}:{hit.get('_id', i)}",
                f"Watcher {watch_id}",
            )
        )
    return signals
