"""The Tableau connector: scored anomalies as .hyper extracts (Hyper API) with .tds data sources,
published with tableauserverclient when a server, site and personal access token are set.

One extract per level — `fraudwatch-transactions.hyper` and `fraudwatch-users.hyper`, each with
the single table `Extract.Extract` that Tableau expects of a published extract — and a .tds
beside each. The column list below is the one place both the extract and the .tds come from.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import quoteattr

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from fraudwatch.contract.scored_directory import ScoredRun
from fraudwatch.contract.scored_output import ENSEMBLE_SCORE, TRANSACTIONS_INDEX, score_column
from fraudwatch.errors import UserError
from fraudwatch.locations.secrets_dir import secret
from fraudwatch.models import MODEL_NAMES


@dataclass(frozen=True)
class Column:
    name: str
    hyper_type: str  # SQL type in Hyper
    arrow_type: pa.DataType
    tableau_type: str  # integer | real | string | boolean | datetime
    caption: str

    @property
    def role(self) -> str:
        if self.tableau_type == "real" and self.name not in ("amount",):
            return "measure"
        return "measure" if self.name in ("amount",) else "dimension"


def _c(name: str, kind: str, caption: str) -> Column:
    types = {
        "id": ("BIGINT", pa.int64(), "integer"),
        "int": ("INTEGER", pa.int32(), "integer"),
        "real": ("DOUBLE PRECISION", pa.float64(), "real"),
        "text": ("TEXT", pa.string(), "string"),
        "bool": ("BOOLEAN", pa.bool_(), "boolean"),
        "ts": ("TIMESTAMP WITH TIME ZONE", pa.timestamp("us", tz="UTC"), "datetime"),
    }
    hyper, arrow, tableau = types[kind]
    return Column(name, hyper, arrow, tableau, caption)


#: What a model is called in a caption; a model not named here is captioned by its name.
_MODEL_CAPTIONS = {
    "iforest": "Isolation Forest",
    "copod": "COPOD (empirical-copula tails)",
    "autoencoder": "Autoencoder",
    "lstm": "LSTM",
}
_SCORES = [
    _c(ENSEMBLE_SCORE, "real", "Ensemble score"),
    *(
        _c(score_column(name), "real", f"{_MODEL_CAPTIONS.get(name, name)} score")
        for name in MODEL_NAMES
    ),
    _c("flagged", "bool", "Flagged"),
    _c("reasons", "text", "Reasons"),
    _c("top_features", "text", "Top features"),
    _c("label", "int", "Label (ground truth)"),
    _c("scenario", "text", "Scenario (ground truth)"),
]
TRANSACTION_COLUMNS = [
    _c("rank", "id", "Rank"),
    _c("tx_id", "id", "Transaction id"),
    _c("user_id", "id", "User id"),
    _c("ts", "ts", "Time (UTC)"),
    _c("amount", "real", "Amount"),
    _c("currency", "text", "Currency"),
    _c("tx_type", "text", "Transaction type"),
    _c("channel", "text", "Channel"),
    _c("country", "text", "IP country"),
    _c("status", "text", "Status"),
    _c("persona", "text", "Persona"),
    _c("hour", "int", "Hour of day"),
    *_SCORES,
]
USER_COLUMNS = [
    _c("rank", "id", "Rank"),
    _c("user_id", "id", "User id"),
    _c("persona", "text", "Persona"),
    *_SCORES,
    _c("tx_count", "id", "Transactions"),
    _c("amount_mean", "real", "Mean amount"),
    _c("amount_max", "real", "Largest amount"),
]
LEVELS = {"transactions": TRANSACTION_COLUMNS, "users": USER_COLUMNS}


def _conform(table: pa.Table, columns: list[Column]) -> pa.Table:
    """The table with exactly `columns`, in order and type; list columns joined with '; '."""
    arrays = []
    for column in columns:
        if column.name not in table.column_names:
            arrays.append(pa.nulls(table.num_rows, column.arrow_type))
            continue
        values = table[column.name]
        if pa.types.is_list(values.type):
            values = pa.chunked_array(
                [
                    pa.array(["; ".join(v or []) for v in chunk.to_pylist()], pa.string())
                    for chunk in values.chunks
                ],
                pa.string(),
            )
        arrays.append(pc.cast(values, column.arrow_type))
    return pa.Table.from_arrays(arrays, names=[c.name for c in columns])


def write_extract(table: pa.Table, columns: list[Column], target: Path) -> int:
    """Write `table` as `target` (.hyper, table Extract.Extract); return the row count."""
    from tableauhyperapi import (
        Connection,
        CreateMode,
        HyperProcess,
        Telemetry,
        escape_string_literal,
    )

    conformed = _conform(table, columns)
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch:
        staging = Path(scratch) / "rows.parquet"
        pq.write_table(conformed, staging)
        column_sql = ", ".join(f'"{c.name}" {c.hyper_type}' for c in columns)
        parameters = {"log_config": "", "default_database_version": "2"}
        with (
            HyperProcess(
                Telemetry.DO_NOT_SEND_USAGE_DATA_TO_TABLEAU, parameters=parameters
            ) as hyper,
            Connection(hyper.endpoint, str(target), CreateMode.CREATE_AND_REPLACE) as conn,
        ):
            conn.execute_command('CREATE SCHEMA "Extract"')
            conn.execute_command(f'CREATE TABLE "Extract"."Extract" ({column_sql})')
            inserted = conn.execute_command(
                'INSERT INTO "Extract"."Extract" SELECT * FROM external('
                f"{escape_string_literal(str(staging))}, FORMAT => 'parquet')"
            )
    return int(inserted)


def tds_document(name: str, columns: list[Column], extract_file: str, header: str) -> str:
    """A Tableau data source (.tds) for an extract written by write_extract."""
    lines = [
        "<?xml version='1.0' encoding='utf-8' ?>",
        f"<!-- {header} -->",
        f"<datasource formatted-name={quoteattr(name)} inline='true' version='18.1' "
        "xmlns:user='http://www.tableausoftware.com/xml/user'>",
        f"  <connection class='hyper' dbname={quoteattr(extract_file)} schema='Extract' "
        "tablename='Extract' authentication='auth-none' default-settings='yes' username=''>",
        "    <relation name='Extract' table='[Extract].[Extract]' type='table' />",
        "  </connection>",
        "  <aliases enabled='yes' />",
    ]
    for column in columns:
        kind = "quantitative" if column.role == "measure" else "nominal"
        if column.tableau_type == "datetime":
            kind = "ordinal"
        lines.append(
            f"  <column caption={quoteattr(column.caption)} datatype='{column.tableau_type}' "
            f"name='[{column.name}]' role='{column.role}' type='{kind}' />"
        )
    lines.append("</datasource>")
    return "\n".join(lines) + "\n"


def tds_template(regenerate: str) -> str:
    """The committed dashboards/tableau/fraudwatch.tds: the transaction-level data source."""
    return tds_document(
        TRANSACTIONS_INDEX,
        TRANSACTION_COLUMNS,
        f"{TRANSACTIONS_INDEX}.hyper",
        f"Generated by {regenerate} from fraudwatch/publish/tableau.py; do not edit. "
        "`fraudwatch publish --to tableau` writes one like it beside each extract.",
    )


@dataclass(frozen=True)
class ExtractFiles:
    hyper: Path
    tds: Path
    rows: int


def write_extracts(run: ScoredRun, out: Path) -> dict[str, ExtractFiles]:
    """Write both levels' extracts and .tds files into `out`."""
    out.mkdir(parents=True, exist_ok=True)
    tables = {"transactions": run.transactions().to_table(), "users": run.users()}
    written = {}
    for level, columns in LEVELS.items():
        name = f"fraudwatch-{level}"
        hyper = out / f"{name}.hyper"
        rows = write_extract(tables[level], columns, hyper)
        tds = out / f"{name}.tds"
        tds.write_text(
            tds_document(
                name,
                columns,
                hyper.name,
                f"Written by `fraudwatch publish --to tableau` for model version {run.model_version}",
            ),
            encoding="utf-8",
        )
        written[level] = ExtractFiles(hyper, tds, rows)
    return written


@dataclass(frozen=True)
class TableauServer:
    url: str
    site: str
    token_name: str
    token_secret: str
    project: str


def server_from_environment(project: str) -> TableauServer | None:
    """The server to publish to, or None when TABLEAU_SERVER_URL is unset (write files only).
    The token comes from TABLEAU_PAT_NAME / TABLEAU_PAT_SECRET or the files `name` and
    `secret` in $FRAUDWATCH_SECRETS_DIR."""
    url = os.environ.get("TABLEAU_SERVER_URL", "").strip()
    if not url:
        return None
    if not url.startswith("https://"):
        raise UserError(f"TABLEAU_SERVER_URL {url!r} must be an https:// URL")
    name = secret("TABLEAU_PAT_NAME", "name")
    token = secret("TABLEAU_PAT_SECRET", "secret")
    if not name or not token:
        raise UserError(
            "TABLEAU_SERVER_URL is set but no personal access token: set TABLEAU_PAT_NAME and "
            "TABLEAU_PAT_SECRET, or put files `name` and `secret` in $FRAUDWATCH_SECRETS_DIR"
        )
    return TableauServer(url, os.environ.get("TABLEAU_SITE", ""), name, token, project)


def publish_extracts(server: TableauServer, files: dict[str, ExtractFiles]) -> list[str]:
    """Publish each extract as a data source (overwrite); return the published names."""
    import tableauserverclient as tsc

    auth = tsc.PersonalAccessTokenAuth(server.token_name, server.token_secret, site_id=server.site)
    client = tsc.Server(server.url, use_server_version=True)
    published = []
    with client.auth.sign_in(auth):
        projects = [p for p in tsc.Pager(client.projects) if p.name == server.project]
        if not projects:
            raise UserError(
                f"Tableau project {server.project!r} does not exist on site {server.site!r}; "
                "create it or pass --tableau-project"
            )
        for extract in files.values():
            item = tsc.DatasourceItem(projects[0].id, name=extract.hyper.stem)
            client.datasources.publish(item, str(extract.hyper), tsc.Server.PublishMode.Overwrite)
            published.append(extract.hyper.stem)
    return published
