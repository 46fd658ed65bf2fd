"""The retention job: one policy, every store (`fraudwatch privacy retain`, docs/privacy.md).

`plan` looks at every configured store and lists what the policy removes or changes, each as
a `Step`; a dry run prints the list, `carry_out` does the steps one by one (each logged by the
module that does it). Nothing is removed before the whole plan is known, so a store that does
not answer fails the run before anything was deleted anywhere.

The policy and the stores come from the pipeline configuration
(`fraudwatch.pipelines.retention.from_config`, which the command and the daily pipeline's step
both use): this package knows nothing of the pipelines.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from functools import partial
from pathlib import Path

from fraudwatch.contract.events import DEFAULT_TOPIC_PREFIX
from fraudwatch.locations.home import fraudwatch_home
from fraudwatch.privacy import date_partitions, elasticsearch_indices, kafka_topics
from fraudwatch.privacy.retention_policy import RetentionPolicy
from fraudwatch.privacy.state_store_records import BY_POLICY, StateStoreRetention

log = logging.getLogger("fraudwatch.privacy.retain")

Location = str | Path


@dataclass
class Step:
    """One thing the policy removes or changes in one store."""

    store: str  # local disk, Ceph S3, Elasticsearch, Kafka, state store
    data_class: str
    action: str
    target: str
    why: str
    run: Callable[[], object] = field(repr=False)


@dataclass
class Stores:
    """Where the job looks; an empty entry is a store that is not configured."""

    data_root: Location | None = None  # the pipelines' data root (local or s3://)
    pipeline_home: Path | None = None  # HOME/tableau/DAY extracts, HOME/retrain/DAY folders
    raw_dirs: list[Location] = field(default_factory=list)  # `generate`/`land` raw folders
    elasticsearch_url: str = ""
    kafka_bootstrap: str = ""
    topic_prefix: str = DEFAULT_TOPIC_PREFIX
    state_url: str = ""

    def names(self) -> list[str]:
        """What is configured, for the run's first line."""
        named = []
        if self.data_root is not None:
            named.append(f"data root {self.data_root}")
        if self.pipeline_home is not None:
            named.append(f"pipeline home {self.pipeline_home} (tableau/, retrain/)")
        named += [f"raw {r}" for r in self.raw_dirs]
        if self.elasticsearch_url:
            named.append(f"Elasticsearch {self.elasticsearch_url}")
        if self.kafka_bootstrap:
            named.append(f"Kafka {self.kafka_bootstrap} ({self.topic_prefix}*)")
        if self.state_url:
            named.append("state store")
        return named


def _day_steps(policy: RetentionPolicy, stores: Stores, today: date) -> list[Step]:
    found: list[date_partitions.Partition] = []
    roots: list[Location] = []
    if stores.data_root is not None:
        found += date_partitions.data_root_partitions(stores.data_root)
        roots.append(stores.data_root)
    if stores.pipeline_home is not None:
        found += date_partitions.pipeline_home_partitions(stores.pipeline_home)
        roots.append(stores.pipeline_home)
    for raw in stores.raw_dirs:
        found += date_partitions.raw_layout_partitions(raw)
        roots.append(raw)
    cutoffs = {c: policy.cutoff(c, today) for c in policy.data_classes()}
    steps = [
        Step(
            "local disk",
            "-",
            "empty trash",
            str(item),
            "left by an earlier run that was cut short",
            partial(date_partitions.empty_trash, [item]),
        )
        for item in date_partitions.leftover_trash(roots)
    ]
    for p in date_partitions.older_than(found, cutoffs):
        steps.append(
            Step(
                p.store,
                p.data_class,
                "remove partition",
                str(p.location),
                f"day {p.day} < {cutoffs[p.data_class]} ({policy.days(p.data_class)} days)",
                partial(date_partitions.remove, p),
            )
        )
    return steps


def _elasticsearch_steps(
    policy: RetentionPolicy, url: str, today: date, now: datetime
) -> list[Step]:
    from fraudwatch.elasticsearch.client import connect

    client = connect(url)
    ilm = elasticsearch_indices.has_ilm(client)
    found = elasticsearch_indices.indices(client)
    steps: list[Step] = []
    if ilm:
        for data_class in sorted({i.data_class for i in found}):
            names = [i.name for i in found if i.data_class == data_class]
            days = policy.days(data_class)
            if elasticsearch_indices.ilm_in_place(client, data_class, names, days):
                continue
            steps.append(
                Step(
                    "Elasticsearch",
                    data_class,
                    "set ILM delete phase",
                    elasticsearch_indices.retention_policy_name(data_class),
                    f"{len(names)} indices deleted {days} days after rollover",
                    partial(
                        elasticsearch_indices.set_ilm_delete_phase, client, data_class, names, days
                    ),
                )
            )
    for index in found:
        cutoff = policy.cutoff_time(index.data_class, today)
        if elasticsearch_indices.aged_out(index, cutoff):
            newest = index.newest.date() if index.newest else f"created {index.created.date()}"
            steps.append(
                Step(
                    "Elasticsearch",
                    index.data_class,
                    "remove index",
                    index.name,
                    f"newest document {newest} < {cutoff.date()} "
                    f"({policy.days(index.data_class)} days)",
                    partial(elasticsearch_indices.delete_index, client, index),
                )
            )
        elif not ilm and elasticsearch_indices.needs_rollover(index, now):
            steps.append(
                Step(
                    "Elasticsearch",
                    index.data_class,
                    "roll over",
                    index.alias,
                    f"write index {index.name} holds a day or more; no ILM on this cluster",
                    partial(elasticsearch_indices.roll_over, client, index.alias),
                )
            )
    return steps


def _kafka_steps(policy: RetentionPolicy, bootstrap: str, prefix: str) -> list[Step]:
    limit = policy.milliseconds("raw_events")
    steps = []
    for topic in kafka_topics.current_retention(bootstrap, prefix):
        if topic.exceeds(limit):
            kept = "forever" if topic.current_ms < 0 else f"{topic.current_ms / 86_400_000:g} days"
            steps.append(
                Step(
                    "Kafka",
                    "raw_events",
                    "cap retention.ms",
                    topic.topic,
                    f"keeps events {kept} > {policy.raw_events} days → {limit}",
                    partial(kafka_topics.set_retention, bootstrap, topic, limit),
                )
            )
    return steps


def _state_store_steps(policy: RetentionPolicy, url: str, today: date) -> list[Step]:
    cutoff = policy.cutoff("alerts_and_interventions", today).isoformat()
    store = StateStoreRetention(url, cutoff)
    steps = []
    for records in store.old_records():
        if records.count:
            why = (
                f"before {cutoff} ({policy.alerts_and_interventions} days)"
                if records.collection in BY_POLICY
                else "expired"
            )
            steps.append(
                Step(
                    "state store",
                    "alerts_and_interventions",
                    "remove records",
                    f"{records.count} {records.collection}",
                    why,
                    partial(store.remove, records.collection),
                )
            )
    return steps


def plan(
    policy: RetentionPolicy,
    stores: Stores,
    today: date | None = None,
    now: datetime | None = None,
) -> list[Step]:
    """Everything the policy removes or changes today, store by store (nothing is touched)."""
    now = now or datetime.now(UTC)
    today = today or now.date()
    steps = _day_steps(policy, stores, today)
    if stores.elasticsearch_url:
        steps += _elasticsearch_steps(policy, stores.elasticsearch_url, today, now)
    if stores.kafka_bootstrap:
        steps += _kafka_steps(policy, stores.kafka_bootstrap, stores.topic_prefix)
    if stores.state_url:
        steps += _state_store_steps(policy, stores.state_url, today)
    return steps


def service_state_url(env: Mapping[str, str]) -> str:
    """The state.url of the intervention service's config file — `$FRAUDWATCH_CONFIG`, else
    `$FRAUDWATCH_HOME/intervention.toml` — when that file exists ("" when it does not): where
    the service's store is, without its password on a command line or in the environment."""
    named = env.get("FRAUDWATCH_CONFIG")
    home = fraudwatch_home(env)
    path = Path(named).expanduser() if named else home / "intervention.toml"
    if not path.is_file():
        return ""
    from fraudwatch.intervention.config import load_settings

    settings = load_settings(path, environ=dict(env))
    return settings.state_url or f"sqlite:///{home / 'intervention.sqlite3'}"


def carry_out(steps: list[Step], on_step: Callable[[Step], None] | None = None) -> dict[str, int]:
    """Do the steps in order; how many of each `store: action` were done."""
    done: dict[str, int] = {}
    for step in steps:
        step.run()
        key = f"{step.store}: {step.action}"
        done[key] = done.get(key, 0) + 1
        if on_step is not None:
            on_step(step)
    return done
