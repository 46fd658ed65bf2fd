"""Render SCORED/ into one self-contained HTML file (inline SVG charts, inline CSS)."""

from __future__ import annotations

import html
import io
import json
from pathlib import Path

import duckdb
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from fraudwatch.errors import UserError
from fraudwatch.locations.atomic import atomic_file
from fraudwatch.models import MODEL_NAMES

TOP_ROWS = 100
_BLUE, _RED, _GREY = "#2563eb", "#dc2626", "#9ca3af"

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;color:#111827;background:#f9fafb}
header{background:#111827;color:#f9fafb;padding:24px 40px}header h1{margin:0 0 6px 0;font-size:24px}
main{padding:24px 40px;max-width:1400px}section{background:#fff;border:1px solid #e5e7eb;border-radius:8px;
padding:16px 20px;margin-bottom:20px}h2{font-size:18px;margin:0 0 12px 0}.grid{display:grid;
grid-template-columns:repeat(auto-fit,minmax(420px,1fr));gap:16px}.kpis{display:flex;gap:16px;flex-wrap:wrap}
.kpi{background:#f3f4f6;border-radius:6px;padding:10px 16px}.kpi b{display:block;font-size:20px}
table{border-collapse:collapse;width:100%;font-size:13px}th,td{border-bottom:1px solid #e5e7eb;padding:4px 8px;
text-align:left;vertical-align:top}th{background:#f3f4f6;position:sticky;top:0}.num{text-align:right;
font-variant-numeric:tabular-nums}.truth{color:#b91c1c;font-weight:600}p.note{color:#4b5563;font-size:13px}
"""


def _svg(fig) -> str:
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg", bbox_inches="tight")
    plt.close(fig)
    text = buffer.getvalue()
    return text[text.index("<svg") :]


def _bar(
    title: str, rows: list[dict], value: str, label: str, limit: int = 24, rotate: bool = False
) -> str:
    rows = rows[:limit]
    fig, ax = plt.subplots(figsize=(6.2, 3.0))
    keys = [str(r["key"]) for r in rows]
    ax.bar(keys, [r[value] for r in rows], color=_BLUE)
    ax.set_title(title, fontsize=11)
    ax.set_ylabel(label)
    ax.tick_params(axis="x", labelrotation=60 if rotate else 0, labelsize=8)
    ax.spines[["top", "right"]].set_visible(False)
    return _svg(fig)


def _score_distributions(db: duckdb.DuckDBPyConnection, users: str) -> str:
    names = [n for n in (*MODEL_NAMES, "ensemble")]
    fig, axes = plt.subplots(1, len(names), figsize=(3.3 * len(names), 2.8), sharey=False)
    bins = np.linspace(0, 1, 41)
    for ax, name in zip(np.atleast_1d(axes), names, strict=True):
        data = db.sql(
            f"SELECT {name}_score, coalesce(label, 0) FROM read_parquet('{users}', hive_partitioning = false) WHERE {name}_score IS NOT NULL"
        ).fetchnumpy()
        scores, labels = data[f"{name}_score"], data[list(data)[1]]
        if len(scores):
            ax.hist(scores[labels == 0], bins=bins, color=_GREY, label="normal", density=True)
            if (labels == 1).any():
                ax.hist(
                    scores[labels == 1],
                    bins=bins,
                    color=_RED,
                    alpha=0.7,
                    label="injected anomaly",
                    density=True,
                )
        ax.set_title(f"{name}", fontsize=11)
        ax.set_xlabel("calibrated score")
        ax.spines[["top", "right"]].set_visible(False)
    np.atleast_1d(axes)[0].legend(fontsize=8)
    return _svg(fig)


def _daily(db: duckdb.DuckDBPyConnection, transactions: str) -> str:
    rows = db.sql(
        f"SELECT CAST(ts AS DATE) AS day, sum(flagged::INT), avg(ensemble_score) FROM read_parquet('{transactions}', hive_partitioning = false) GROUP BY 1 ORDER BY 1"
    ).fetchall()
    fig, ax = plt.subplots(figsize=(12.5, 2.8))
    ax.plot([r[0] for r in rows], [r[1] for r in rows], color=_RED, marker="o", markersize=3)
    ax.set_ylabel("flagged transactions")
    ax.set_title("Flagged transactions per day", fontsize=11)
    ax.spines[["top", "right"]].set_visible(False)
    fig.autofmt_xdate()
    return _svg(fig)


def _scenario_recall(evaluation: dict) -> str:
    fig, ax = plt.subplots(figsize=(6.2, 3.0))
    levels = [
        lvl for lvl in ("users", "transactions") if evaluation.get(lvl, {}).get("by_scenario")
    ]
    scenarios = sorted({s for lvl in levels for s in evaluation[lvl]["by_scenario"]})
    width = 0.4
    for i, lvl in enumerate(levels):
        data = evaluation[lvl]["by_scenario"]
        recall = [data.get(s, {}).get("recall_top_1pct") for s in scenarios]
        ax.bar(
            np.arange(len(scenarios)) + i * width,
            [r or 0 for r in recall],
            width,
            label=lvl,
            color=[_BLUE, _RED][i],
        )
        for j, r in enumerate(recall):
            if r is None:  # a scenario without victims is shown as such, never dropped
                ax.text(j + i * width, 0.02, "no victims", rotation=90, fontsize=7, va="bottom")
    ax.set_xticks(
        np.arange(len(scenarios)) + width / 2, scenarios, rotation=30, ha="right", fontsize=8
    )
    ax.set_ylim(0, 1)
    ax.set_ylabel("recall in top 1%")
    ax.set_title("Which scenarios the ensemble catches", fontsize=11)
    ax.legend(fontsize=8)
    ax.spines[["top", "right"]].set_visible(False)
    return _svg(fig)


def _scenario_model_table(evaluation: dict) -> str:
    """Recall per scenario for every model (users, top 1 % / analyst budget)."""
    data = evaluation.get("users", {}).get("by_scenario", {})
    if not data:
        return ""
    models = sorted({m for v in data.values() for m in v.get("models", {})})
    if not models:
        return ""
    head = "".join(f"<th>{m}</th>" for m in models)

    def cell(value) -> str:
        return "<td>no victims</td>" if value is None else f'<td class="num">{value:.2f}</td>'

    rows = []
    for scenario, v in sorted(data.items()):
        cells = "".join(cell(v["models"].get(m, {}).get("recall_top_1pct")) for m in models)
        rows.append(f"<tr><td>{scenario}</td><td class='num'>{v['anomalies']}</td>{cells}</tr>")
    return (
        "<table><thead><tr><th>scenario</th><th>anomalous users</th>"
        f"{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )


def _evaluation_table(evaluation: dict) -> str:
    rows = []
    for level in ("users", "transactions"):
        for name, m in evaluation.get(level, {}).items():
            if name == "by_scenario" or m.get("roc_auc") is None:
                continue
            cells = "".join(
                f'<td class="num">{m[c]:.3f}</td>'
                for c in ("roc_auc", "pr_auc", "precision_at_k", "recall_at_k")
            )
            rows.append(f"<tr><td>{level}</td><td>{name}</td>{cells}</tr>")
    return (
        "<table><tr><th>level</th><th>model</th><th>ROC-AUC</th><th>PR-AUC</th><th>precision@k</th>"
        "<th>recall@k</th></tr>" + "".join(rows) + "</table>"
    )


def _top_table(db: duckdb.DuckDBPyConnection, users: str) -> str:
    rows = db.sql(
        f"""SELECT rank, user_id, persona, ensemble_score, iforest_score, copod_score, autoencoder_score, lstm_score,
        tx_count, reasons, scenario FROM read_parquet('{users}', hive_partitioning = false) ORDER BY rank LIMIT {TOP_ROWS}"""
    ).fetchall()
    head = "".join(
        f"<th>{h}</th>"
        for h in (
            "rank",
            "user",
            "persona",
            "ensemble",
            "iforest",
            "copod",
            "autoenc.",
            "lstm",
            "tx",
            "why (features furthest from normal)",
            "ground truth",
        )
    )
    body = []
    for r in rows:
        fmt = lambda v: "" if v is None else f"{v:.3f}"  # noqa: E731
        body.append(
            "<tr>"
            f'<td class="num">{r[0]}</td><td class="num">{r[1]}</td><td>{html.escape(str(r[2] or ""))}</td>'
            + "".join(f'<td class="num">{fmt(v)}</td>' for v in r[3:8])
            + f'<td class="num">{r[8]}</td><td>{html.escape(r[9] or "")}</td>'
            f'<td class="truth">{html.escape(r[10] or "")}</td></tr>'
        )
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"


def _precision_chart(rows: list) -> str:
    """Measured alert precision per day of verdict, one line per model version."""
    fig, ax = plt.subplots(figsize=(12.5, 3.0))
    versions = sorted({r.model_version for r in rows})
    for version in versions:
        points = [(r.day, r.precision) for r in rows if r.model_version == version]
        points = [(d, p) for d, p in points if p is not None]
        ax.plot(
            [np.datetime64(d) for d, _ in points],
            [p for _, p in points],
            marker="o",
            markersize=4,
            label=version,
        )
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("confirmed fraud / judged")
    ax.set_title("Measured alert precision by day of verdict", fontsize=11)
    if versions:
        ax.legend(fontsize=8, title="model version", title_fontsize=8)
    ax.spines[["top", "right"]].set_visible(False)
    fig.autofmt_xdate()
    return _svg(fig)


def _precision_section(dispositions: Path) -> str:
    """The measured-precision section: analysts' verdicts on flagged users (feedback/)."""
    from fraudwatch.feedback.labels import read_dispositions
    from fraudwatch.feedback.precision import alert_precision

    rows = alert_precision(read_dispositions(dispositions))

    def shown(value: float | None) -> str:
        return "" if value is None else f"{value:.2f}"

    table = "".join(
        f"<tr><td>{html.escape(r.model_version)}</td><td>{r.day}</td>"
        f'<td class="num">{r.fraud}</td><td class="num">{r.legitimate}</td>'
        f'<td class="num">{r.unsure}</td><td class="num">{shown(r.precision)}</td></tr>'
        for r in rows
    )
    return (
        "<section id='measured-precision'><h2>Measured alert precision</h2><p class='note'>"
        f"From {html.escape(dispositions.name)}: of the flagged users an analyst judged, the "
        "share confirmed as fraud (unsure verdicts left out), per model version and day of "
        f"verdict.</p>{_precision_chart(rows)}<table><tr><th>model version</th><th>day</th>"
        "<th>fraud</th><th>legitimate</th><th>unsure</th><th>precision</th></tr>"
        f"{table}</table></section>"
    )


def write_report(scored: Path, out: Path, dispositions: Path | None = None) -> Path:
    scored = Path(scored)
    users, transactions = scored / "users.parquet", scored / "transactions" / "*.parquet"
    if not users.is_file() or not (scored / "insights.json").is_file():
        raise UserError(
            f"--scored {scored} is not a directory written by `fraudwatch score`; run it first"
        )
    run = json.loads((scored / "run.json").read_text())
    insights = json.loads((scored / "insights.json").read_text())
    evaluation_path = scored / "evaluation.json"
    evaluation = json.loads(evaluation_path.read_text()) if evaluation_path.is_file() else {}
    db = duckdb.connect()
    db.sql("SET TimeZone = 'UTC'")
    charts = [
        _bar(
            "Flagged share by hour of day (UTC)",
            sorted(insights["by_hour"], key=lambda r: int(r["key"])),
            "share",
            "flagged share",
        ),
        _bar("Flagged share by transaction type", insights["by_tx_type"], "share", "flagged share"),
        _bar("Flagged share by persona", insights["by_persona"], "share", "flagged share"),
        _bar("Flagged share by channel", insights["by_channel"], "share", "flagged share"),
        _bar(
            "Flagged transactions by country (top 20)",
            insights["by_country"],
            "flagged",
            "flagged",
            limit=20,
            rotate=True,
        ),
    ]
    if evaluation:
        charts.append(_scenario_recall(evaluation))
    counts = run["counts"]
    kpis = "".join(
        f'<div class="kpi">{label}<b>{value}</b></div>'
        for label, value in (
            ("users", f"{counts['users']:,}"),
            ("transactions", f"{counts['transactions']:,}"),
            ("flagged share", f"{run['flagged_share']:.1%}"),
            ("engine", run["engine"]),
            ("models", ", ".join(run["models"])),
            ("model version", run["model_version"]),
        )
    )
    sections = [
        f"<section><h2>Run</h2><div class='kpis'>{kpis}</div></section>",
        f"<section><h2>Anomalies over time</h2>{_daily(db, str(transactions))}</section>",
        "<section><h2>Score distributions per model (users)</h2><p class='note'>Each score is "
        "calibrated: the share of the training sample scoring lower, extrapolated past it; red "
        "shows the users with an injected scenario.</p>"
        f"{_score_distributions(db, str(users))}</section>",
        "<section><h2>Where anomalies concentrate</h2><p class='note'>Share of transactions flagged "
        f"(top {run['flagged_share']:.0%} by ensemble score) in each group.</p><div class='grid'>"
        + "".join(f"<div>{c}</div>" for c in charts)
        + "</div></section>",
    ]
    if evaluation:
        sections.append(
            f"<section><h2>Ranking quality against ground truth</h2>{_evaluation_table(evaluation)}"
            "<h3>Recall per scenario and model (users in the top 1 %)</h3>"
            f"{_scenario_model_table(evaluation)}</section>"
        )
    if dispositions is not None:
        sections.append(_precision_section(Path(dispositions)))
    sections.append(
        f"<section><h2>Top {TOP_ROWS} anomalous users</h2>{_top_table(db, str(users))}</section>"
    )
    page = (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'><title>fraudwatch report</title>"
        f"<style>{_CSS}</style></head><body><header><h1>fraudwatch — anomaly report</h1>"
        f"<div>{html.escape(run['created_at'])} · input {html.escape(run['input'])}</div></header>"
        f"<main>{''.join(sections)}</main></body></html>"
    )
    with atomic_file(Path(out)) as tmp:
        tmp.write_text(page, encoding="utf-8")
    return Path(out)
