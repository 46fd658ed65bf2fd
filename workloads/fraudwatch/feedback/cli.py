"""`fraudwatch feedback simulate`: the simulated analyst's dispositions for scored runs of
generated data, written as a dispositions file (docs/feedback.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from fraudwatch.errors import UserError, user_errors
from fraudwatch.progress import console, progress_bar

feedback_app = typer.Typer(
    help="Analyst feedback: simulated dispositions for generated data (docs/feedback.md).",
    no_args_is_help=True,
)


@feedback_app.command("simulate")
@user_errors
def simulate(
    scored: Annotated[
        list[Path], typer.Option(help="Directory written by `fraudwatch score` (repeatable)")
    ],
    out: Annotated[Path, typer.Option(help="Dispositions file to write: .parquet or .jsonl")],
    seed: Annotated[int, typer.Option(help="Same seed, same dispositions")] = 0,
    coverage: Annotated[float, typer.Option(help="Share of flagged users reviewed")] = 0.8,
    error_rate: Annotated[float, typer.Option(help="Share of verdicts that are wrong")] = 0.05,
    delay_days: Annotated[
        float, typer.Option(help="Mean days from a user's last transaction to the verdict")
    ] = 2.0,
    control_share: Annotated[
        float,
        typer.Option(help="Share of the users NOT flagged also reviewed (a control sample)"),
    ] = 0.0,
) -> None:
    """Judge the flagged users of scored generated data from its ground truth."""
    from fraudwatch.feedback.analyst import AnalystSettings
    from fraudwatch.feedback.analyst import simulate as simulate_run
    from fraudwatch.feedback.labels import write_dispositions

    settings = AnalystSettings(seed, coverage, error_rate, delay_days, control_share)
    if out.suffix not in (".parquet", ".jsonl"):
        raise UserError(f"--out {out}: name a .parquet or .jsonl file")
    found = []
    with progress_bar() as progress:
        task = progress.add_task("review flagged users and the control sample", total=len(scored))
        for folder in scored:
            found += simulate_run(folder, settings)
            progress.advance(task)
    found.sort(key=lambda d: (d.ts, d.user_id))
    write_dispositions(out, found)
    fraud = sum(d.label == "fraud" for d in found)
    console.print(f"wrote {len(found)} dispositions ({fraud} fraud) to {out}")
