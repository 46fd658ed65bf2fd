"""The retention job as the pipeline configuration sets it up: `from_config` (the policy and
the stores of a pipeline configuration) and the `fraudwatch privacy retain` command (wired into
the `privacy` group by fraudwatch/cli.py). The job itself is privacy/retain.py, which knows
nothing of the pipelines. The daily pipeline's `retain` step (daily_steps.py) runs the same:

    policy, stores = from_config(config)
    carry_out(plan(policy, stores))
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from fraudwatch.pipelines.config import PipelineConfig, load_config
from fraudwatch.privacy.cli import show_deletions_log, today_or
from fraudwatch.privacy.retain import Location, Stores, carry_out, plan, service_state_url
from fraudwatch.privacy.retention_policy import RetentionPolicy, check_against_retraining
from fraudwatch.progress import console, progress_bar


def from_config(
    config: PipelineConfig,
    *,
    raw_dirs: list[Location] | None = None,
    elasticsearch_url: str | None = None,
    kafka_bootstrap: str | None = None,
    state_url: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> tuple[RetentionPolicy, Stores]:
    """The policy and the stores of a pipeline configuration. Unless given: Elasticsearch from
    FRAUDWATCH_ELASTICSEARCH_URL; Kafka from kafka.bootstrap, else FRAUDWATCH_KAFKA_BOOTSTRAP;
    the state store from FRAUDWATCH_STATE_URL, else the intervention service's own config
    file when there is one (see `service_state_url`)."""
    env = os.environ if environ is None else environ
    policy = config.privacy.retention
    check_against_retraining(policy, config.retrain.window_days)
    stores = Stores(
        data_root=config.data,
        pipeline_home=config.root,
        raw_dirs=list(raw_dirs or []),
        elasticsearch_url=elasticsearch_url or env.get("FRAUDWATCH_ELASTICSEARCH_URL", ""),
        kafka_bootstrap=(
            kafka_bootstrap or config.kafka.bootstrap or env.get("FRAUDWATCH_KAFKA_BOOTSTRAP", "")
        ),
        topic_prefix=config.kafka.topic_prefix,
        state_url=state_url or env.get("FRAUDWATCH_STATE_URL") or service_state_url(env),
    )
    return policy, stores


def retain(
    config: Annotated[
        Path | None,
        typer.Option(
            help="Pipeline config (YAML/JSON) with privacy.retention and the data root; "
            "default: $FRAUDWATCH_PIPELINE_CONFIG, else the defaults"
        ),
    ] = None,
    raw: Annotated[
        list[str] | None,
        typer.Option(
            help="A raw folder or s3://BUCKET/PREFIX written by `generate`/`land` (its "
            "date=DAY partitions); repeat for several"
        ),
    ] = None,
    es_url: Annotated[
        str | None,
        typer.Option(
            envvar="FRAUDWATCH_ELASTICSEARCH_URL",
            help="Elasticsearch whose fraudwatch-* indices to age out",
        ),
    ] = None,
    kafka_bootstrap: Annotated[
        str | None,
        typer.Option(
            help="Kafka whose event topics' retention.ms to cap (default: the config's "
            "kafka.bootstrap, else $FRAUDWATCH_KAFKA_BOOTSTRAP)",
        ),
    ] = None,
    state_url: Annotated[
        str | None,
        typer.Option(
            envvar="FRAUDWATCH_STATE_URL",
            help="The intervention service's state store (its state.url); default: the "
            "state.url of $FRAUDWATCH_CONFIG or $FRAUDWATCH_HOME/intervention.toml when it exists",
        ),
    ] = None,
    today: Annotated[
        str | None,
        typer.Option(help="The day the policy counts back from, YYYY-MM-DD (default: today, UTC)"),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="List what would be removed; change nothing")
    ] = False,
) -> None:
    """Remove what is older than privacy.retention from every store: date partitions (local
    disk, Ceph S3), Elasticsearch indices, Kafka retention.ms, state-store records."""
    policy, stores = from_config(
        load_config(config),
        raw_dirs=list(raw or []),
        elasticsearch_url=es_url,
        kafka_bootstrap=kafka_bootstrap,
        state_url=state_url,
    )
    day = today_or(today)
    console.print(
        "retention: "
        + ", ".join(f"{c} {policy.days(c)} days" for c in policy.data_classes())
        + f"; counted back from {day}",
        soft_wrap=True,
        highlight=False,
    )
    console.print("stores: " + "; ".join(stores.names()), soft_wrap=True, highlight=False)
    with console.status("looking for what is older than the policy"):
        steps = plan(policy, stores, today=day)
    if not steps:
        console.print("nothing is older than the policy")
        return
    table = Table(title="would change" if dry_run else "changes")
    for column in ("store", "data class", "action", "what", "why"):
        table.add_column(column, overflow="fold")
    for s in steps:
        table.add_row(s.store, s.data_class, s.action, s.target, s.why)
    console.print(table)
    if dry_run:
        console.print(f"dry run: {len(steps)} change(s) listed, nothing removed")
        return
    show_deletions_log()
    with progress_bar() as bar:
        task = bar.add_task("enforcing retention", total=len(steps))
        carry_out(steps, on_step=lambda _: bar.advance(task))
    console.print(f"done: {len(steps)} change(s)")
