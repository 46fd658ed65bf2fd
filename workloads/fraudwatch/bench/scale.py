"""How the batch path's cost grows with the work: generate, score and report at 1M and 10M
transactions (100M opt-in) on DuckDB, score at 1M and 10M on Spark (local, the session's
default master), with wall time and peak resident memory per command and per stage of the
scoring job (from the job's run.json), the growth exponent between sizes (1.0 = linear) and a
chart. Prints a Markdown table and JSON; asserts nothing.

    python -m fraudwatch.bench.scale [--sizes 1000000,10000000] [--with-100m]
        [--spark-sizes 1000000,10000000 | --spark-sizes ''] [--chart FILE.svg] [--workdir DIR]

Users are a tenth of the transactions (the generator's default ratio). Each size's data is
deleted once measured, so the disk holds one size at a time (100M: about 6 GB raw + 8 GB
scored). A command's memory is the peak of its whole process tree, sampled every 0.5 s (a
Spark run's JVM included; bench/runs.py); the stage peaks read only the job's Python
process."""

from __future__ import annotations

import argparse
import itertools
import json
import math
import shutil
import tempfile
from pathlib import Path

from fraudwatch.bench.runs import run_cli
from fraudwatch.contract.scored_output import RUN_FILE

STAGES = ("extract features", "fit models", "score transactions", "rank and explain")


def _sizes(text: str) -> list[int]:
    return sorted({int(s) for s in text.split(",") if s.strip()})


def measure(size: int, work: Path, spark: bool) -> dict:
    """Generate `size` transactions, score them on DuckDB (and on Spark), report; per command
    {seconds, cpu_seconds, peak_rss_gib} and the scoring job's stages."""
    raw, scored = work / f"raw-{size}", work / f"scored-{size}"
    out: dict = {"transactions": size, "users": size // 10}
    out["generate"] = run_cli(
        "generate", "--out", str(raw), "--users", str(size // 10),
        "--transactions", str(size), "--overwrite",
    )  # fmt: skip
    engines = ("duckdb", "spark") if spark else ("duckdb",)
    for engine in engines:
        target = scored.with_name(f"{scored.name}-{engine}")
        try:
            out[f"score_{engine}"] = run_cli(
                "score", "--input", str(raw), "--out", str(target), "--engine", engine,
                "--overwrite",
            )  # fmt: skip
        except RuntimeError as failed:  # recorded, and the other runs go on
            out[f"failed_{engine}"] = str(failed)
            print(f"score on {engine} at {size:,} transactions failed: {failed}", flush=True)
            continue
        out[f"stages_{engine}"] = json.loads((target / RUN_FILE).read_text())["stages"]
        if engine == "duckdb":
            out["report"] = run_cli(
                "report", "--scored", str(target), "--out", str(work / f"report-{size}.html")
            )
        shutil.rmtree(target)
    shutil.rmtree(raw)
    return out


def series(results: list[dict]) -> dict[str, dict[int, tuple[float, float]]]:
    """{name: {transactions: (seconds, peak GiB)}} for every command and DuckDB stage."""
    out: dict[str, dict[int, tuple[float, float]]] = {}
    for r in results:
        n = r["transactions"]
        for key in ("generate", "score_duckdb", "report", "score_spark"):
            if key in r:
                # The whole process tree's peak where measured (a Spark JVM included).
                peak = r[key].get("peak_tree_rss_gib", r[key]["peak_rss_gib"])
                out.setdefault(key, {})[n] = (r[key]["seconds"], peak)
        for engine in ("duckdb", "spark"):
            for stage, v in r.get(f"stages_{engine}", {}).items():
                name = f"{engine}: {stage}"
                out.setdefault(name, {})[n] = (v["seconds"], v["peak_rss_gib_so_far"])
    return out


def growth(points: dict[int, tuple[float, float]]) -> list[float]:
    """The exponent b of time ~ n^b between each pair of consecutive sizes (1.0 = linear)."""
    sizes = sorted(points)
    return [
        math.log(max(points[b][0], 1e-3) / max(points[a][0], 1e-3)) / math.log(b / a)
        for a, b in itertools.pairwise(sizes)
    ]


def markdown(results: list[dict]) -> str:
    sizes = [r["transactions"] for r in results]
    head = " | ".join(f"{n:,} tx: s (GiB)" for n in sizes)
    lines = [f"| step | {head} | growth exponent |", "|---" * (len(sizes) + 2) + "|"]
    for name, points in series(results).items():
        cells = " | ".join(
            f"{points[n][0]:.1f} ({points[n][1]:.2f})" if n in points else "—" for n in sizes
        )
        exps = ", ".join(f"{b:.2f}" for b in growth(points)) or "—"
        lines.append(f"| {name} | {cells} | {exps} |")
    return "\n".join(lines)


def chart(results: list[dict], path: Path) -> None:
    """Wall time and peak memory against transactions, log-log, a line per command."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    all_series = series(results)
    for name in ("generate", "score_duckdb", "score_spark", "report"):
        points = all_series.get(name)
        if not points:
            continue
        xs = sorted(points)
        left.plot(xs, [points[x][0] for x in xs], marker="o", label=name.replace("_", " on "))
        right.plot(xs, [points[x][1] for x in xs], marker="o", label=name.replace("_", " on "))
    for stage in STAGES:
        points = all_series.get(f"duckdb: {stage}")
        if points:
            xs = sorted(points)
            left.plot(xs, [points[x][0] for x in xs], ls="--", lw=1, label=f"duckdb: {stage}")
    if results:
        xs = [r["transactions"] for r in results]
        base = all_series["score_duckdb"][xs[0]][0]
        left.plot(xs, [base * x / xs[0] for x in xs], color="grey", lw=0.8, ls=":", label="linear")
    left.set(xscale="log", yscale="log", xlabel="transactions", ylabel="wall seconds")
    right.set(xscale="log", xlabel="transactions", ylabel="peak resident memory (GiB)")
    left.set_title("time per command and per scoring stage")
    right.set_title("peak memory per command")
    left.legend(fontsize=7)
    right.legend(fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format=path.suffix.lstrip(".") or "svg", metadata={"Date": None})
    plt.close(fig)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000000,10000000")
    parser.add_argument("--with-100m", action="store_true", help="add 100,000,000 transactions")
    parser.add_argument("--spark-sizes", default="1000000,10000000")
    parser.add_argument("--chart", type=Path, default=None, help="write the chart (.svg/.png)")
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args(argv)
    sizes = _sizes(args.sizes) + ([100_000_000] if args.with_100m else [])
    spark_sizes = set(_sizes(args.spark_sizes))
    work = args.workdir or Path(tempfile.mkdtemp(prefix="fraudwatch-scale-"))
    work.mkdir(parents=True, exist_ok=True)
    results = []
    for size in sizes:
        results.append(measure(size, work, size in spark_sizes))
        print(json.dumps(results[-1]), flush=True)
    print(markdown(results))
    if args.chart:
        chart(results, args.chart)
        print(f"chart: {args.chart}")


if __name__ == "__main__":
    main()
