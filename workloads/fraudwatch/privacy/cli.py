"""`fraudwatch privacy export` and `erase`: a customer's access and erasure requests. The
`retain` command of the same group reads the pipeline configuration and lives with it
(pipelines/retention.py)."""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from fraudwatch.errors import UserError, user_errors
from fraudwatch.progress import console, progress_bar

if TYPE_CHECKING:
    from fraudwatch.intervention.stores import StateStore
    from fraudwatch.privacy.subject import SubjectStores

privacy_app = typer.Typer(
    help="Personal data: retention across the stores, a customer's access and erasure "
    "requests (docs/privacy.md).",
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


def show_deletions_log() -> None:
    """Every removal is logged (logger fraudwatch.privacy.retain); show it on the console."""
    logger = logging.getLogger("fraudwatch.privacy")
    if not any(isinstance(h, _ConsoleLog) for h in logger.handlers):
        logger.addHandler(_ConsoleLog())
    logger.setLevel(logging.INFO)


def today_or(value: str | None) -> date:
    if value is None:
        return datetime.now(UTC).date()
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise UserError(f"--today {value!r} is not a date; use YYYY-MM-DD") from None


# --- data-subject requests ------------------------------------------------------------------
def _subject_stores(
    raw: list[str] | None, scored: list[str] | None, es_url: str | None, state_url: str | None
) -> tuple[SubjectStores, StateStore]:
    """The stores to search and the state store (also where the request is audited)."""
    import os

    from fraudwatch.intervention.config import load_settings
    from fraudwatch.intervention.stores import open_store
    from fraudwatch.privacy.subject import SubjectStores

    if not raw and not scored:
        raise UserError("give at least one --raw or --scored folder to search for the customer")
    url = state_url or os.environ.get("FRAUDWATCH_STATE_URL") or load_settings().resolved_state_url
    stores = SubjectStores(
        raw_dirs=list(raw or []),
        scored_dirs=list(scored or []),
        elasticsearch_url=es_url or "",
        state_url=url,
    )
    return stores, open_store(url)


def _audit(
    store: StateStore, action: str, user_id: int, result: str, detail: str, actor: str
) -> None:
    from fraudwatch.intervention.audit import new_entry

    store.append_audit(
        new_entry(
            actor=actor,
            role="admin",
            via="cli",
            action=action,
            subject_kind="account",
            subject_id=str(user_id),
            reason="data-subject request",
            result=result,
            detail=detail,
        )
    )


_RAW_HELP = "A raw folder or s3://BUCKET/PREFIX (`generate`/`land`); repeat for several"
_SCORED_HELP = "A scored folder or s3://BUCKET/PREFIX (`score`); repeat for several"
_ES_HELP = "Elasticsearch holding the fraudwatch-* indices (none: not searched)"
_STATE_HELP = (
    "The intervention service's state store (its state.url); default: $FRAUDWATCH_STATE_URL, "
    "else the service's own config ($FRAUDWATCH_CONFIG or $FRAUDWATCH_HOME/intervention.toml)"
)


@privacy_app.command()
@user_errors
def export(
    user_id: Annotated[str, typer.Option(help="The customer's user_id")],
    out: Annotated[Path, typer.Option(help="The JSON file to write (replaced whole)")],
    raw: Annotated[list[str] | None, typer.Option(help=_RAW_HELP)] = None,
    scored: Annotated[list[str] | None, typer.Option(help=_SCORED_HELP)] = None,
    es_url: Annotated[
        str | None, typer.Option(envvar="FRAUDWATCH_ELASTICSEARCH_URL", help=_ES_HELP)
    ] = None,
    state_url: Annotated[str | None, typer.Option(help=_STATE_HELP)] = None,
) -> None:
    """Everything held about one customer, one section per store, as JSON (access request).
    Read only; the export itself is recorded in the audit log."""
    from fraudwatch.privacy.subject import counts, gather, parse_user_id, write_export

    uid = parse_user_id(user_id)
    stores, store = _subject_stores(raw, scored, es_url, state_url)
    names = stores.names()
    console.print("searching: " + "; ".join(names), soft_wrap=True, highlight=False)
    with progress_bar() as bar:
        task = bar.add_task(f"gathering user {uid}", total=len(names))
        document = gather(stores, uid, store, on_store=lambda _: bar.advance(task))
    write_export(document, out)
    table = Table(title=f"user {uid}")
    for column in ("store", "where", "records"):
        table.add_column(column, overflow="fold")
    found = list(counts(document))
    for row in found:
        table.add_row(row[0], row[1], str(row[2]))
    console.print(table)
    total = sum(n for *_, n in found)
    _audit(store, "privacy_export", uid, "applied", f"{total} records exported", "cli")
    console.print(f"wrote {out}: {total} records", soft_wrap=True, highlight=False)


@privacy_app.command()
@user_errors
def erase(
    user_id: Annotated[str, typer.Option(help="The customer's user_id")],
    raw: Annotated[list[str] | None, typer.Option(help=_RAW_HELP)] = None,
    scored: Annotated[list[str] | None, typer.Option(help=_SCORED_HELP)] = None,
    es_url: Annotated[
        str | None, typer.Option(envvar="FRAUDWATCH_ELASTICSEARCH_URL", help=_ES_HELP)
    ] = None,
    state_url: Annotated[str | None, typer.Option(help=_STATE_HELP)] = None,
    override_hold: Annotated[
        bool,
        typer.Option(
            "--override-hold",
            help="Erase a customer under an open fraud case (locked, step-up, pending "
            "approval); needs an admin's --admin-token",
        ),
    ] = False,
    admin_token: Annotated[
        str | None,
        typer.Option(
            envvar="FRAUDWATCH_ADMIN_TOKEN",
            help="An admin API token (`fraudwatch tokens create --role admin`), for "
            "--override-hold",
        ),
    ] = None,
) -> None:
    """Remove one customer from the raw and scored folders (affected partitions rewritten
    whole), Elasticsearch and the state store (erasure request). Refused while a fraud case is
    open unless an admin passes --override-hold. Recorded in the audit log."""
    from fraudwatch.intervention.audit import new_entry
    from fraudwatch.intervention.auth import principal_from_token
    from fraudwatch.privacy.subject import (
        audit_entries_of,
        erase_rows,
        es_documents,
        es_erase,
        legal_hold,
        parse_user_id,
        rows_in,
        state_erase,
    )

    uid = parse_user_id(user_id)
    stores, store = _subject_stores(raw, scored, es_url, state_url)
    actor = "cli"
    if override_hold:
        principal = principal_from_token(store, admin_token) if admin_token else None
        if principal is None or principal.role != "admin":
            raise UserError(
                "--override-hold needs an admin: give --admin-token (or FRAUDWATCH_ADMIN_TOKEN) "
                "with a token of role admin"
            )
        actor = principal.actor
    hold = legal_hold(store, uid)
    if hold is not None and not override_hold:
        reason = "; ".join(hold.reasons)
        _audit(store, "privacy_erase", uid, "refused", f"legal hold: {reason}", actor)
        raise UserError(
            f"user {uid} is under a legal hold ({reason}): not erased. Close the case first, "
            "or have an admin pass --override-hold --admin-token TOKEN"
        )
    entries = audit_entries_of(store, uid)
    format1 = [e["seq"] for e in entries if not e.get("v")]
    if format1:
        _audit(
            store,
            "privacy_erase",
            uid,
            "refused",
            f"{len(format1)} audit entries in format 1; run `fraudwatch audit migrate`",
            actor,
        )
        raise UserError(
            f"user {uid} has {len(format1)} audit entries in format 1 (seq "
            f"{', '.join(map(str, format1[:5]))}{', ...' if len(format1) > 5 else ''}), "
            "written before format 2: their hash covers the id itself, so nothing was erased. "
            "Run `fraudwatch audit migrate` once (with the service stopped), then erase again "
            "(docs/privacy.md)"
        )
    show_deletions_log()
    roots = [*stores.raw_dirs, *stores.scored_dirs]
    with console.status(f"finding user {uid} in every store"):
        affected = {str(root): rows_in(root, uid) for root in roots}
        if stores.elasticsearch_url:  # it answers before anything is changed anywhere
            es_documents(stores.elasticsearch_url, uid)
    removed_rows = 0
    with progress_bar() as bar:
        task = bar.add_task(f"erasing user {uid}", total=len(roots) + 2)
        for root in roots:
            removed_rows += erase_rows(root, affected[str(root)], uid)
            bar.advance(task)
        es_docs = es_erase(stores.elasticsearch_url, uid) if stores.elasticsearch_url else 0
        bar.advance(task)
        records = state_erase(stores.state_url, uid)
        bar.advance(task)
    held = f" over a legal hold ({'; '.join(hold.reasons)})" if hold else ""
    detail = (
        f"{removed_rows} rows, {es_docs} Elasticsearch documents, "
        + ", ".join(f"{n} {k}" for k, n in records.items())
        + f", {sum(1 for e in entries if not e.get('erased'))} audit entries"
        + held
    )
    # The audit log last: its entries about the customer lose their personal fields and the
    # customer's key goes; the record of the erasure names the id's commitment, not the id.
    done = store.erase_audit_subject(
        str(uid),
        new_entry(
            actor=actor,
            role="admin",
            via="cli",
            action="privacy_erase",
            reason="data-subject request",
            result="applied",
            detail=detail,
        ),
    )
    console.print(
        f"erased user {uid}: {detail}; audit entry {done['entry']['seq']} records it",
        soft_wrap=True,
        highlight=False,
    )
