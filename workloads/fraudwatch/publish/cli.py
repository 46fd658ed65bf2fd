"""`fraudwatch publish`, `fraudwatch es apply` and `fraudwatch dashboards diff|apply|render`.

The lead wires these into fraudwatch.cli: `app.command("publish")(publish)`,
`app.add_typer(es_app, name="es")`, `app.add_typer(dashboards_app, name="dashboards")`.
Every command turns a UserError into one line on stderr and exit status 2.
"""

from __future__ import annotations

import functools
import os
import runpy
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import typer

from fraudwatch.errors import UserError

F = TypeVar("F", bound=Callable[..., Any])
DEFINITIONS_HELP = "Folder of Elasticsearch definitions (the repository's dashboards/elasticsearch)"


def _one_line_errors(command: F) -> F:
    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except UserError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(exc.exit_code) from None

    return wrapper  # type: ignore[return-value]


def _dashboards_dir(explicit: Path | None) -> Path:
    """dashboards/ of the repository: --dashboards-dir, else found from the working directory up."""
    if explicit is not None:
        if not explicit.is_dir():
            raise UserError(f"{explicit} is not a directory; pass the repository's dashboards/")
        return explicit
    here = Path.cwd().resolve()
    for folder in (here, *here.parents):
        if (folder / "dashboards" / "render.py").is_file():
            return folder / "dashboards"
    raise UserError(
        "no dashboards/ found above the working directory; run from the repository or pass --dashboards-dir"
    )


def _es_url(url: str | None) -> str:
    value = url or os.environ.get("FRAUDWATCH_ELASTICSEARCH_URL", "")
    if not value:
        raise UserError("no Elasticsearch URL: pass --es-url or set FRAUDWATCH_ELASTICSEARCH_URL")
    return value


@_one_line_errors
def publish(
    to: str = typer.Option(..., "--to", help="Where to publish: elasticsearch or tableau"),
    scored: str = typer.Option(
        ..., "--scored", "--input", help="Scored directory or s3:// URI from `fraudwatch score`"
    ),
    es_url: str | None = typer.Option(
        None, "--es-url", help="Default: FRAUDWATCH_ELASTICSEARCH_URL"
    ),
    ca_cert: Path | None = typer.Option(None, "--ca-cert", help="CA file for an https cluster"),
    definitions: Path | None = typer.Option(None, "--definitions", help=DEFINITIONS_HELP),
    out: Path = typer.Option(
        Path("tableau-extracts"), "--out", help="Where the .hyper and .tds files go"
    ),
    tableau_project: str = typer.Option(
        "fraudwatch", "--tableau-project", help="Tableau project to publish into"
    ),
) -> None:
    """Publish scored results to Elasticsearch (bulk, idempotent ids) or Tableau (.hyper + .tds)."""
    from fraudwatch.contract.scored_directory import open_scored

    if to not in ("elasticsearch", "tableau"):
        raise UserError(f"--to {to!r} is not a target; use elasticsearch or tableau")
    run = open_scored(scored)
    if to == "elasticsearch":
        from fraudwatch.contract.scored_output import TRANSACTIONS_INDEX, USERS_INDEX
        from fraudwatch.elasticsearch.client import connect
        from fraudwatch.publish import elasticsearch as es

        folder = definitions or _dashboards_dir(None) / "elasticsearch"
        client = connect(_es_url(es_url), ca_cert)
        summary = es.publish_scored(client, run, folder)
        typer.echo(
            f"indexed {summary.transactions:,} transactions into {TRANSACTIONS_INDEX} and "
            f"{summary.users:,} users into {USERS_INDEX} (model {summary.model_version}, "
            f"{summary.retries} retries)"
        )
        return
    from fraudwatch.publish import tableau

    server = tableau.server_from_environment(tableau_project)
    files = tableau.write_extracts(run, out)
    for level, written in files.items():
        typer.echo(f"wrote {written.rows:,} {level} to {written.hyper} and {written.tds}")
    if server is None:
        typer.echo("TABLEAU_SERVER_URL is not set: extracts written, nothing published")
        return
    for name in tableau.publish_extracts(server, files):
        typer.echo(f"published {name} to {server.url} site {server.site or '(default)'}")


es_app = typer.Typer(
    help="Elasticsearch as code: index templates, ILM, Watcher.", no_args_is_help=True
)


@es_app.callback()
def es_group() -> None:
    """Elasticsearch as code: index templates, ILM, Watcher (dashboards/elasticsearch/)."""


@es_app.command("apply")
@_one_line_errors
def es_apply(
    es_url: str | None = typer.Option(
        None, "--es-url", help="Default: FRAUDWATCH_ELASTICSEARCH_URL"
    ),
    ca_cert: Path | None = typer.Option(None, "--ca-cert", help="CA file for an https cluster"),
    definitions: Path | None = typer.Option(None, "--definitions", help=DEFINITIONS_HELP),
    watches: bool = typer.Option(
        False, "--watches/--no-watches", help="Also install Watcher watches (Gold+ licence)"
    ),
) -> None:
    """Apply ILM policies and index templates (and watches) and bootstrap the write aliases."""
    from fraudwatch.elasticsearch.client import connect
    from fraudwatch.elasticsearch.definitions import apply_definitions

    folder = definitions or _dashboards_dir(None) / "elasticsearch"
    result = apply_definitions(connect(_es_url(es_url), ca_cert), folder, watches=watches)
    for name in result.applied:
        typer.echo(f"applied {name}")
    for note in result.skipped:
        typer.echo(f"skipped {note}")


dashboards_app = typer.Typer(
    help="Grafana dashboards and alert rules as code.", no_args_is_help=True
)


def _grafana_dir(dashboards_dir: Path | None) -> Path:
    return _dashboards_dir(dashboards_dir) / "grafana"


@dashboards_app.command("diff")
@_one_line_errors
def dashboards_diff(
    url: str | None = typer.Option(None, "--url", help="Grafana URL (or GRAFANA_URL)"),
    token: str | None = typer.Option(
        None, "--token", help="Service account token (or GRAFANA_TOKEN)"
    ),
    export: Path | None = typer.Option(
        None, "--export", help="Compare with an export instead of a live Grafana"
    ),
    dashboards_dir: Path | None = typer.Option(
        None, "--dashboards-dir", help="Default: the repository's dashboards/"
    ),
) -> None:
    """Print what differs between the committed dashboards/rules and Grafana; exit 1 on drift."""
    from fraudwatch.publish import grafana_drift

    if export is not None:
        live_dashboards, live_rules = grafana_drift.load_export(export)
    else:
        api = grafana_drift.GrafanaApi(
            url or os.environ.get("GRAFANA_URL", ""), token or os.environ.get("GRAFANA_TOKEN", "")
        )
        live_dashboards, live_rules = api.dashboards(), api.rules()
    changes = grafana_drift.drift(_grafana_dir(dashboards_dir), live_dashboards, live_rules)
    for change in changes:
        typer.echo(change.line())
        if change.detail:
            typer.echo(change.detail)
    if changes:
        raise typer.Exit(1)
    typer.echo("no drift: Grafana matches the committed dashboards and alert rules")


@dashboards_app.command("apply")
@_one_line_errors
def dashboards_apply(
    url: str | None = typer.Option(None, "--url", help="Grafana URL (or GRAFANA_URL)"),
    token: str | None = typer.Option(
        None, "--token", help="Service account token (or GRAFANA_TOKEN)"
    ),
    dashboards_dir: Path | None = typer.Option(
        None, "--dashboards-dir", help="Default: the repository's dashboards/"
    ),
) -> None:
    """Push the committed dashboards and alert rules to Grafana (create or overwrite)."""
    from fraudwatch.publish import grafana_drift

    api = grafana_drift.GrafanaApi(
        url or os.environ.get("GRAFANA_URL", ""), token or os.environ.get("GRAFANA_TOKEN", "")
    )
    for line in grafana_drift.apply(api, _grafana_dir(dashboards_dir)):
        typer.echo(f"applied {line}")


@dashboards_app.command("render")
@_one_line_errors
def dashboards_render(
    dashboards_dir: Path | None = typer.Option(
        None, "--dashboards-dir", help="Default: the repository's dashboards/"
    ),
    check: bool = typer.Option(
        False, "--check", help="Only list stale generated files; exit 1 if any"
    ),
) -> None:
    """Regenerate the dashboards' JSON, provisioning YAML and .tds (dashboards/render.py)."""
    script = _dashboards_dir(dashboards_dir) / "render.py"
    module = runpy.run_path(str(script))
    code = module["main"](["--check"] if check else [])
    if code:
        raise typer.Exit(code)
