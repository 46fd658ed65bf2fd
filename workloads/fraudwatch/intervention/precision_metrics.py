"""Measured alert precision on the service's `/metrics` (issue 16, item 3; docs/feedback.md).

Read from the state store when Prometheus scrapes, at most once per `max_age` seconds
(CACHE_SECONDS; a scrape in between gets the values of the last read), so every replica
reports the shared verdicts:

* `fraudwatch_alert_precision{model_version}`: among the users flagged in the results the
  service serves, those whose latest verdict under the served model version is `fraud`, over
  those whose latest verdict is `fraud` or `legitimate` (`unsure` is left out). The ratio is
  feedback/precision.py's (`precision_of`), the same as the HTML report's and the registry's.
  Only the served version has a series: a disposition names the version served when it was
  made, and the flagged users of an earlier version are no longer in the results. When a new
  version is served its series starts and the old one ends; Prometheus keeps the history.
  `fraudwatch_alert_judged_users{model_version}` is the ratio's denominator.
* `fraudwatch_alert_rule_precision{model_version, via}`: the same ratio over the accounts an
  alert hook acted on — an audit entry from `via` `hook:grafana` or `hook:watcher` deciding a
  lock or step-up (applied, already in place, dry-run or queued by the circuit breaker). The
  audit keeps the alert's fingerprint (one alert instance, so one user), not its rule name,
  so the hook stands for the rule: one Grafana rule and one Watcher watch reach the hooks
  (docs/dashboards.md). `fraudwatch_alert_rule_judged_users{model_version, via}` beside it.
* `fraudwatch_dispositions_total{label}`: every verdict recorded, by label, all versions.

Cost per read: a count per label, the served version's dispositions (verdicts are made by
people), the flagged check of their users in chunks of CHUNK, and the audit entries about
accounts appended since the last read — at most AUDIT_PAGES × AUDIT_PAGE per read, the rest
the next time. A ratio with nothing judged has no sample. If the store or the results cannot
be read, the last values are kept and the failure is logged; the other metrics still answer.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from fraudwatch.feedback.labels import Disposition
from fraudwatch.feedback.precision import PrecisionRow, precision_of
from fraudwatch.intervention.dispositions import LABELS, served_model_version
from fraudwatch.intervention.results import AnomalyFilter, ResultsReader
from fraudwatch.intervention.stores import StateStore

log = logging.getLogger("fraudwatch.intervention")
Family = GaugeMetricFamily | CounterMetricFamily

#: The names the service exports (the interventions dashboard queries them by these names).
ALERT_PRECISION = "fraudwatch_alert_precision"
ALERT_JUDGED = "fraudwatch_alert_judged_users"
RULE_PRECISION = "fraudwatch_alert_rule_precision"
RULE_JUDGED = "fraudwatch_alert_rule_judged_users"
DISPOSITIONS_TOTAL = "fraudwatch_dispositions_total"
METRIC_NAMES = (ALERT_PRECISION, ALERT_JUDGED, RULE_PRECISION, RULE_JUDGED, DISPOSITIONS_TOTAL)

#: Seconds between two reads of the store (Prometheus scrapes every 15-60 s).
CACHE_SECONDS = 30.0
#: Audit entries read per query, and queries per read at most.
AUDIT_PAGE = 5000
AUDIT_PAGES = 10
#: User ids per flagged check against the results.
CHUNK = 500
#: An alert hook "acted on" an account: it decided one of these actions, with one of these
#: results (audit entries, interventions.AutomatedResponder).
HOOK_PREFIX = "hook:"
HOOK_ACTIONS = frozenset({"lock", "step_up"})
HOOK_RESULTS = frozenset({"applied", "no_change", "dry_run", "queued"})


def as_disposition(record: dict[str, Any]) -> Disposition:
    """A stored disposition (`StateStore.dispositions`) as feedback's Disposition."""
    ts = datetime.fromisoformat(str(record["ts"]).replace("Z", "+00:00"))
    return Disposition(
        user_id=int(record["user_id"]),
        label=str(record["label"]),
        ts=(ts if ts.tzinfo else ts.replace(tzinfo=UTC)).astimezone(UTC),
        tx_id=record.get("tx_id"),
        reason=str(record.get("reason") or ""),
        model_version=record.get("model_version"),
        actor=record.get("actor"),
    )


def _families() -> dict[str, Family]:
    return {
        ALERT_PRECISION: GaugeMetricFamily(
            ALERT_PRECISION,
            "Share of flagged users (served results) whose latest verdict is fraud, among "
            "those judged fraud or legitimate, for the served model version",
            labels=["model_version"],
        ),
        ALERT_JUDGED: GaugeMetricFamily(
            ALERT_JUDGED,
            "Flagged users (served results) with a fraud or legitimate verdict",
            labels=["model_version"],
        ),
        RULE_PRECISION: GaugeMetricFamily(
            RULE_PRECISION,
            "Share of the accounts an alert hook acted on whose latest verdict is fraud, among "
            "those judged fraud or legitimate",
            labels=["model_version", "via"],
        ),
        RULE_JUDGED: GaugeMetricFamily(
            RULE_JUDGED,
            "Accounts an alert hook acted on with a fraud or legitimate verdict",
            labels=["model_version", "via"],
        ),
        DISPOSITIONS_TOTAL: CounterMetricFamily(
            DISPOSITIONS_TOTAL, "Analyst verdicts recorded, by label", labels=["label"]
        ),
    }


def _add(precision: Family, judged: Family, row: PrecisionRow, *labels: str) -> None:
    if row.precision is not None:
        precision.add_metric(list(labels), row.precision)
    judged.add_metric(list(labels), row.judged)


class PrecisionCollector(Collector):
    """Registered on the service's registry; `collect` runs on every scrape of /metrics."""

    def __init__(
        self,
        store: StateStore,
        results: ResultsReader,
        max_age: float = CACHE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.results = results
        self.max_age = max_age
        self.clock = clock
        self._lock = threading.Lock()
        self._metrics: list[Metric] = []
        self._read_at: float | None = None
        self._audit_seq = 0  # the audit read so far (entries are append-only)
        self._acted: dict[int, set[str]] = {}  # user id → hooks that acted on the account

    def describe(self) -> Iterable[Metric]:
        return list(_families().values())

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            now = self.clock()
            if self._read_at is None or now - self._read_at >= self.max_age:
                try:
                    self._metrics = self._read()
                except Exception:  # a scrape must not fail: keep the last values
                    log.exception("measured precision: reading the store or results failed")
                self._read_at = now
            metrics = self._metrics
        yield from metrics

    def _read(self) -> list[Metric]:
        families = _families()
        for label in LABELS:
            _, total = self.store.dispositions(label=label, limit=1)
            families[DISPOSITIONS_TOTAL].add_metric([label], total)
        version = served_model_version(self.results)
        name = version or "unknown"
        records, _ = self.store.dispositions(model_version=version)
        verdicts = [as_disposition(r) for r in records if r.get("model_version") == version]
        flagged = self._flagged({d.user_id for d in verdicts})
        row = precision_of((d for d in verdicts if d.user_id in flagged), version)
        _add(families[ALERT_PRECISION], families[ALERT_JUDGED], row, name)
        self._scan_audit()
        for via in sorted({v for hooks in self._acted.values() for v in hooks}):
            acted = [d for d in verdicts if via in self._acted.get(d.user_id, ())]
            row = precision_of(acted, version)
            _add(families[RULE_PRECISION], families[RULE_JUDGED], row, name, via)
        return list(families.values())

    def _flagged(self, user_ids: set[int]) -> set[int]:
        """Those of `user_ids` flagged in the served results."""
        ids = sorted(user_ids)
        flagged: set[int] = set()
        for start in range(0, len(ids), CHUNK):
            chunk = [str(u) for u in ids[start : start + CHUNK]]
            items, _ = self.results.anomalies(
                AnomalyFilter(flagged=True), level="users", limit=len(chunk), include_ids=chunk
            )
            flagged.update(int(item["user_id"]) for item in items)
        return flagged

    def _scan_audit(self) -> None:
        for _ in range(AUDIT_PAGES):
            entries = self.store.audit_entries(
                subject_kind="account", after_seq=self._audit_seq, limit=AUDIT_PAGE
            )
            for entry in entries:
                via = str(entry.get("via") or "")
                if (
                    via.startswith(HOOK_PREFIX)
                    and entry.get("action") in HOOK_ACTIONS
                    and entry.get("result") in HOOK_RESULTS
                    and str(entry.get("subject_id") or "").isdigit()
                ):
                    self._acted.setdefault(int(entry["subject_id"]), set()).add(via)
            if entries:
                self._audit_seq = int(entries[-1]["seq"])
            if len(entries) < AUDIT_PAGE:
                return
