"""The `fraudwatch` command."""

from __future__ import annotations

import json
import os
from datetime import date
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from fraudwatch.errors import UserError, user_errors
from fraudwatch.locations.storage import is_s3
from fraudwatch.models import MODEL_NAMES
from fraudwatch.progress import console, progress_bar

app = typer.Typer(
    help="fraudwatch: find the transactions and users that do not fit, explain why, act on them.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


def _models(value: str) -> list[str]:
    return [m.strip() for m in value.split(",") if m.strip()]


def _parse_date(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise UserError(f"--start {value!r} is not a date; use YYYY-MM-DD") from None


def run_generate(
    users,
    transactions,
    seed,
    out,
    start,
    days,
    fraud_rate,
    workers,
    chunk_users,
    overwrite,
    sink="parquet",
    kafka_bootstrap=None,
    topic_prefix=None,
):
    from fraudwatch.generator.population import GeneratorConfig
    from fraudwatch.generator.writer import generate as generate_data

    config = GeneratorConfig(
        users=users,
        transactions=transactions,
        seed=seed,
        start=_parse_date(start),
        days=days,
        fraud_rate=fraud_rate,
    )
    if workers < 1 or chunk_users < 1:
        raise UserError("--workers and --chunk-users must be at least 1")
    if sink == "kafka":
        return _generate_to_kafka(config, users, chunk_users, kafka_bootstrap, topic_prefix)
    if sink != "parquet":
        raise UserError(f"unknown --sink {sink!r}; use parquet or kafka")
    if out is None:
        raise UserError("--out DIR is required with --sink parquet")
    with progress_bar() as bar:
        task = bar.add_task("generate users and events", total=users)
        summary = generate_data(
            config,
            out,
            workers=workers,
            chunk_users=chunk_users,
            overwrite=overwrite,
            on_progress=lambda n: bar.advance(task, n),
        )
    c = summary.counts
    console.print(
        f"wrote {c['users']:,} users, {c['transactions']:,} transactions "
        f"({summary.fraud_transactions:,} anomalous), {c['logins']:,} logins, "
        f"{c['api_calls']:,} API calls to {out}"
    )
    return summary


def _generate_to_kafka(config, users, chunk_users, bootstrap, topic_prefix):
    from fraudwatch.contract.events import DEFAULT_TOPIC_PREFIX
    from fraudwatch.streaming.produce import generate_to_kafka

    if not bootstrap:
        raise UserError(
            "--sink kafka needs --kafka-bootstrap HOST:PORT (or FRAUDWATCH_KAFKA_BOOTSTRAP)"
        )
    with progress_bar() as bar:
        task = bar.add_task("produce users' events to Kafka", total=users)
        produced = generate_to_kafka(
            config,
            bootstrap,
            topic_prefix=topic_prefix or DEFAULT_TOPIC_PREFIX,
            chunk_users=chunk_users,
            on_progress=lambda n: bar.advance(task, n),
        )
    console.print("produced " + ", ".join(f"{n:,} to {t}" for t, n in produced.items()))
    return produced


@app.command()
@user_errors
def generate(
    out: Annotated[
        str | None,
        typer.Option(
            help="Output directory or s3://bucket/prefix (must not exist unless --overwrite)"
        ),
    ] = None,
    users: Annotated[
        int, typer.Option(help="Number of users, split evenly over the four personas")
    ] = 1_000_000,
    transactions: Annotated[int, typer.Option(help="Number of transactions in total")] = 10_000_000,
    seed: Annotated[int, typer.Option(help="Random seed: same seed, same data")] = 42,
    start: Annotated[str, typer.Option(help="First day (UTC), YYYY-MM-DD")] = "2026-01-01",
    days: Annotated[int, typer.Option(help="Length of the period in days")] = 30,
    fraud_rate: Annotated[
        float, typer.Option(help="Share of transactions in anomaly scenarios")
    ] = 0.001,
    workers: Annotated[
        int, typer.Option(help="Worker processes (output does not depend on it)")
    ] = os.cpu_count() or 1,
    chunk_users: Annotated[
        int, typer.Option(help="Users per chunk (bounds memory; output rows do not depend on it)")
    ] = 50_000,
    overwrite: Annotated[bool, typer.Option(help="Replace --out if it exists")] = False,
    sink: Annotated[
        str, typer.Option(help="parquet (files under --out) or kafka (topics)")
    ] = "parquet",
    kafka_bootstrap: Annotated[
        str | None,
        typer.Option(
            envvar="FRAUDWATCH_KAFKA_BOOTSTRAP", help="Kafka bootstrap servers (--sink kafka)"
        ),
    ] = None,
    topic_prefix: Annotated[
        str | None, typer.Option(help="Prefix of the Kafka topic names")
    ] = None,
):
    """Generate users, transactions, logins and API calls with injected anomaly scenarios."""
    run_generate(
        users,
        transactions,
        seed,
        out,
        start,
        days,
        fraud_rate,
        workers,
        chunk_users,
        overwrite,
        sink,
        kafka_bootstrap,
        topic_prefix,
    )


def run_score(input, out, engine, models, top, fit_users, models_dir, overwrite):
    from fraudwatch.scoring.pipeline import ScoreOptions
    from fraudwatch.scoring.pipeline import score as score_data

    options = ScoreOptions(
        engine=engine, models=_models(models), fit_users=fit_users, models_dir=models_dir
    )
    with progress_bar() as bar:
        tasks: dict[str, int] = {}

        def report(step: str, advance: int, total: int | None) -> None:
            if step not in tasks:
                tasks[step] = bar.add_task(step, total=total)
            bar.advance(tasks[step], advance)

        summary = score_data(input, out, options, overwrite=overwrite, progress=report)
    console.print(
        f"scored {summary.transactions:,} transactions and {summary.users:,} users "
        f"with model version {summary.model_version} → {out}"
    )
    if top and not is_s3(out):
        print_top(Path(out), top)
    return summary


def print_top(scored: Path, n: int) -> None:
    """Print the top-n users and write them to SCORED/top_users.csv."""
    import pyarrow.parquet as pq

    from fraudwatch.scoring.ranking import top_users, write_top_users

    # users.parquet is the job's users ranking, in rank order: the top n are its first rows.
    columns = ["rank", "user_id", "persona", "ensemble_score", "reasons", "scenario"]
    top = top_users(pq.read_table(scored / "users.parquet", columns=columns), n)
    write_top_users(top, scored / "top_users.csv")
    table = Table(title=f"Top {n} anomalous users")
    for column in ("rank", "user", "persona", "score", "why", "truth"):
        table.add_column(column, overflow="fold")
    for r in top.to_pylist():
        table.add_row(*[("" if v is None else str(v)) for v in r.values()])
    console.print(table)


@app.command()
@user_errors
def score(
    input: Annotated[str, typer.Option(help="Raw data directory written by `fraudwatch generate`")],
    out: Annotated[
        str, typer.Option(help="Output directory or s3://bucket/prefix for the scored data")
    ],
    engine: Annotated[
        str, typer.Option(help="Feature engine: duckdb (one machine) or spark")
    ] = "duckdb",
    models: Annotated[
        str, typer.Option(help=f"Comma-separated models from: {','.join(MODEL_NAMES)}")
    ] = ",".join(MODEL_NAMES),
    top: Annotated[
        int, typer.Option(help="Print the top N users (and write top_users.csv); 0 = none")
    ] = 0,
    fit_users: Annotated[int, typer.Option(help="Users in the training sample")] = 20_000,
    models_dir: Annotated[
        Path | None, typer.Option(help="Score with this fitted model version instead of fitting")
    ] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace --out if it exists")] = False,
):
    """Compute features, fit the models on a sample, score and rank every user and transaction."""
    run_score(input, out, engine, models, top, fit_users, models_dir, overwrite)


@app.command()
@user_errors
def evaluate(
    input: Annotated[
        Path, typer.Option(help="Parquet or CSV table: numeric features + a label column")
    ],
    label_column: Annotated[
        str, typer.Option(help="Column holding 1 for anomalies, 0 otherwise")
    ] = "label",
    models: Annotated[
        str, typer.Option(help="Comma-separated models: iforest,copod,autoencoder")
    ] = "iforest,copod,autoencoder",
    repeats: Annotated[int, typer.Option(help="Average over this many seeds")] = 1,
    k: Annotated[
        int | None, typer.Option(help="k for precision/recall@k (default: number of anomalies)")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON to stdout")] = False,
):
    """Fit the models on a labelled table without its labels and report ROC-AUC, PR-AUC, P@k, R@k."""
    from fraudwatch.evaluation.table import evaluate_table

    with console.status("fitting and scoring"):
        result = evaluate_table(input, label_column, _models(models), repeats=repeats, k=k)
    if as_json:
        typer.echo(json.dumps(result))
        return
    table = Table(title=f"{input.name}: unsupervised ranking quality")
    for column in ("model", "ROC-AUC", "PR-AUC", "precision@k", "recall@k", "k"):
        table.add_column(column)
    for name, m in result.items():
        table.add_row(
            name, *[str(m[c]) for c in ("roc_auc", "pr_auc", "precision_at_k", "recall_at_k", "k")]
        )
    console.print(table)


@app.command()
@user_errors
def report(
    scored: Annotated[Path, typer.Option(help="Directory written by `fraudwatch score`")],
    out: Annotated[Path, typer.Option(help="HTML file to write")] = Path("report.html"),
    dispositions: Annotated[
        Path | None, typer.Option(help="Dispositions file: adds measured alert precision")
    ] = None,
):
    """Write one self-contained HTML report with charts an analyst would read."""
    from fraudwatch.report.html import write_report

    with console.status("drawing charts"):
        write_report(scored, out, dispositions)
    console.print(f"report: {out.absolute()}")


@app.command()
@user_errors
def demo(
    out: Annotated[
        Path | None, typer.Option(help="Working directory (default: $FRAUDWATCH_HOME/demo)")
    ] = None,
    full: Annotated[
        bool, typer.Option(help="Full scale: 1,000,000 users and 10,000,000 transactions")
    ] = False,
    users: Annotated[int, typer.Option(help="Users at demo scale")] = 20_000,
    transactions: Annotated[int, typer.Option(help="Transactions at demo scale")] = 200_000,
    seed: Annotated[int, typer.Option(help="Random seed")] = 42,
):
    """generate → score → evaluate → report, on embedded defaults (no servers)."""
    from fraudwatch.locations.home import demo_dir

    root = out or demo_dir()
    if full:
        users, transactions = 1_000_000, 10_000_000
    raw, scored, html = root / "raw", root / "scored", root / "report.html"
    console.rule("1/4 generate")
    run_generate(
        users, transactions, seed, raw, "2026-01-01", 30, 0.001, os.cpu_count() or 1, 50_000, True
    )
    console.rule("2/4 score")
    summary = run_score(raw, scored, "duckdb", ",".join(MODEL_NAMES), 10, 20_000, None, True)
    console.rule("3/4 evaluate")
    if summary.evaluation:
        table = Table(title="How well each model ranks the injected anomalies")
        for column in ("level", "model", "ROC-AUC", "PR-AUC", "precision@k", "recall@k"):
            table.add_column(column)
        for level in ("users", "transactions"):
            for name, m in summary.evaluation[level].items():
                if name != "by_scenario":
                    table.add_row(
                        level,
                        name,
                        *[
                            str(m[c])
                            for c in ("roc_auc", "pr_auc", "precision_at_k", "recall_at_k")
                        ],
                    )
        console.print(table)
    console.rule("4/4 report")
    from fraudwatch.report.html import write_report

    write_report(scored, html)
    console.print(f"[bold]report:[/bold] {html.absolute()}")


def _wire_subcommands() -> None:
    """Commands that live next to the code they drive."""
    from fraudwatch.feedback.cli import feedback_app
    from fraudwatch.intervention.cli import audit_app, serve, tokens_app
    from fraudwatch.landing import land
    from fraudwatch.pipelines.retention import retain
    from fraudwatch.privacy.cli import privacy_app
    from fraudwatch.publish.cli import dashboards_app, es_app, publish
    from fraudwatch.streaming.cli import produce, stream

    app.command("serve")(user_errors(serve))
    app.add_typer(tokens_app, name="tokens")
    app.add_typer(audit_app, name="audit")
    app.command("publish")(user_errors(publish))
    app.add_typer(es_app, name="es")
    app.add_typer(dashboards_app, name="dashboards")
    app.command("stream")(user_errors(stream))
    app.command("produce")(user_errors(produce))
    app.command("land")(user_errors(land))
    app.add_typer(feedback_app, name="feedback")
    privacy_app.command("retain")(user_errors(retain))
    app.add_typer(privacy_app, name="privacy")


_wire_subcommands()


def main() -> None:
    try:
        app()
    except UserError as exc:  # a sub-command group without its own user_errors wrapper
        console.print(f"[red]error:[/red] {exc}", soft_wrap=True, highlight=False)
        raise SystemExit(exc.exit_code) from None


if __name__ == "__main__":
    main()
