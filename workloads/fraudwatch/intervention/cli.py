"""Commands of the intervention service, wired into `fraudwatch` by fraudwatch/cli.py:
`fraudwatch serve`, `fraudwatch tokens create|list|revoke`,
`fraudwatch audit verify|migrate|export`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from fraudwatch.errors import UserError
from fraudwatch.intervention.audit import new_entry, verify_store
from fraudwatch.intervention.auth import ROLES, create_token
from fraudwatch.intervention.config import load_settings
from fraudwatch.intervention.stores import StateStore, open_store

tokens_app = typer.Typer(help="API tokens for the intervention service (stored hashed).")
audit_app = typer.Typer(help="The tamper-evident audit log.")


def _store() -> StateStore:
    return open_store(load_settings().resolved_state_url)


def serve(
    host: Annotated[str, typer.Option(help="Address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port")] = 8000,
    scored: Annotated[
        Path | None,
        typer.Option(help="Scored results directory (default: $FRAUDWATCH_HOME/demo/scored)"),
    ] = None,
) -> None:
    """Run the intervention service (REST API + admin page)."""
    import uvicorn

    from fraudwatch.intervention.api import create_app
    from fraudwatch.intervention.results_source import open_results

    settings = load_settings().with_scored(scored)
    if settings.elasticsearch.url and scored is not None:
        raise UserError(
            "--scored was given but results.elasticsearch_url is set, so results come from "
            "Elasticsearch: drop --scored, or unset results.elasticsearch_url "
            "(FRAUDWATCH_ELASTICSEARCH_URL) to read the Parquet"
        )
    if not 0 < port < 65536:
        raise UserError(f"--port {port} is not a TCP port: use 1-65535")
    # Elasticsearch is not contacted here: while it is down the API answers 503, not a crash.
    results = open_results(settings)
    store = open_store(settings.resolved_state_url)
    app = create_app(settings, store, results)
    typer.echo(
        f"intervention service on http://{host}:{port} (admin page: /admin), "
        f"{results.describe()}, config {settings.source}"
    )
    # Forwarded headers are judged by the app (server.trusted_proxies), not by uvicorn.
    uvicorn.run(
        app, host=host, port=port, log_level="info", server_header=False, proxy_headers=False
    )


@tokens_app.command("create")
def tokens_create(
    role: Annotated[str, typer.Option(help=f"One of: {', '.join(ROLES)}")],
    name: Annotated[str, typer.Option(help="A label to recognise the token by")] = "",
) -> None:
    """Create an API token; it is printed once, alone on the last line."""
    store = _store()
    token, record = create_token(store, role, name)
    store.append_audit(
        new_entry(
            actor="cli",
            role="admin",
            via="cli",
            action="token_create",
            subject_kind="token",
            subject_id=record["token_id"],
            result="applied",
            detail=f"role {role}",
        )
    )
    typer.echo(f"created {role} token {record['token_id']} (shown once; store it now):")
    typer.echo(token)


@tokens_app.command("list")
def tokens_list() -> None:
    """List tokens (ids and roles; the tokens themselves are not stored)."""
    for record in _store().list_tokens():
        state = "revoked" if record.get("revoked") else "active"
        typer.echo(f"{record['token_id']}  {record['role']:<10}  {state:<7}  {record['name']}")


@tokens_app.command("revoke")
def tokens_revoke(
    token_id: Annotated[str, typer.Argument(help="The id `tokens list` shows")],
) -> None:
    """Revoke a token by its id."""
    store = _store()
    if not store.revoke_token(token_id):
        raise UserError(f"no active token with id {token_id}: see `fraudwatch tokens list`")
    store.append_audit(
        new_entry(
            actor="cli",
            role="admin",
            via="cli",
            action="token_revoke",
            subject_kind="token",
            subject_id=token_id,
            result="applied",
        )
    )
    typer.echo(f"revoked {token_id}")


@audit_app.command("verify")
def audit_verify() -> None:
    """Check the audit hash chain and the state against it; exit 2 naming the first edited
    or deleted entry, or the account/transaction whose state was edited directly."""
    result = verify_store(_store())
    if not result.ok:
        raise UserError(f"audit log tampered: {result.problem}")
    typer.echo(f"audit chain intact: {result.entries} entries, head {result.head_hash}")


@audit_app.command("migrate")
def audit_migrate() -> None:
    """Re-seal the audit chain in entry format 2 once (with the service stopped), so the
    entries written before it can be erased by `fraudwatch privacy erase`; the new head is
    printed, and the record appended names the head before (docs/intervention.md)."""
    from fraudwatch.intervention.audit import MigrationRefused

    store = _store()
    try:
        done = store.migrate_audit()
    except MigrationRefused as refused:
        raise UserError(
            f"audit log tampered: {refused}; not migrated (re-sealing would hide it)"
        ) from None
    if done["entry"] is None:
        typer.echo(f"nothing to migrate: all {done['entries']} entries are in format 2")
        return
    result = verify_store(store)
    if not result.ok:
        raise UserError(f"re-sealed, but the log does not verify: {result.problem}")
    typer.echo(
        f"re-sealed {done['entries']} entries ({done['format1']} were in format 1); "
        f"{done['entry']['detail'].split('; ', 1)[1]}; the head now: seq {result.entries}, "
        f"hash {result.head_hash}"
    )


@audit_app.command("export")
def audit_export(
    es_url: Annotated[
        str,
        typer.Option(envvar="FRAUDWATCH_ELASTICSEARCH_URL", help="Elasticsearch URL"),
    ],
    ca_cert: Annotated[
        Path | None, typer.Option(help="CA file for an https cluster (or FRAUDWATCH_ES_CA_FILE)")
    ] = None,
) -> None:
    """Copy the audit entries not yet exported to Elasticsearch (alias fraudwatch-audit)."""
    from fraudwatch.elasticsearch.client import connect
    from fraudwatch.intervention.audit_export import AUDIT_ALIAS, export_audit

    with connect(es_url, ca_cert) as client:
        done = export_audit(_store(), client)
    if done.exported:
        typer.echo(
            f"exported {done.exported} audit entries (seq {done.first_seq}-{done.last_seq}) "
            f"to {AUDIT_ALIAS}"
        )
    else:
        typer.echo(f"{AUDIT_ALIAS} is up to date")
