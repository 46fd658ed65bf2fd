"""`fraudwatch privacy retain`: enforce the retention policy in every configured store."""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from fraudwatch.errors import UserError, user_errors
from fraudwatch.progress import console, progress_bar

privacy_app = typer.Typer(
    help="Personal data: retention across the stores (docs/privacy.md).",
    no_args_is_help=True,
)


class _ConsoleLog(logging.Handler):
    """Log records as whole lines on the console (above the progress bar, never wrapped: a
    path in the log must stay greppable)."""

    def emit(self, record: logging.LogRecord) -> None:
        stamp = datetime.fromtimestamp(record.created, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        console.print(
            f"{stamp} {record.levelname} {record.getMessage()}",
            soft_wrap=True,
            highlight=False,
            markup=False,
        )


def _show_deletions_log() -> None:
    """Every removal is logged (logger fraudwatch.privacy.retain); show it on the console."""
    logger = logging.getLogger("fraudwatch.privacy")
    if not any(isinstance(h, _ConsoleLog) for h in logger.handlers):
        logger.addHandler(_ConsoleLog())
    logger.setLevel(logging.INFO)


def _today(value: str | None) -> date:
    if value is None:
        return datetime.now(UTC).date()
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise UserError(f"--today {value!r} is not a date; use YYYY-MM-DD") from None


@privacy_app.command()
@user_errors
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
    from fraudwatch.pipelines.config import load_config
    from fraudwatch.privacy.retain import carry_out, from_config, plan

    policy, stores = from_config(
        load_config(config),
        raw_dirs=list(raw or []),
        elasticsearch_url=es_url,
        kafka_bootstrap=kafka_bootstrap,
        state_url=state_url,
    )
    day = _today(today)
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
    _show_deletions_log()
    with progress_bar() as bar:
        task = bar.add_task("enforcing retention", total=len(steps))
        carry_out(steps, on_step=lambda _: bar.advance(task))
    console.print(f"done: {len(steps)} change(s)")
