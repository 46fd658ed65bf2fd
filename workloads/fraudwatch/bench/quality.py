"""Detection quality beside the peers: our members and the ensemble against PyOD's IForest,
ECOD, COPOD, HBOS, LOF and AutoEncoder on the public labelled data sets, in one run.

Prints a Markdown table (ROC-AUC / PR-AUC per set, mean rank by PR-AUC and by ROC-AUC; rank 1
is best) and the JSON figures; asserts nothing. `make bench-quality` runs it; the table goes
into docs/benchmarks.md and the README's "Measured quality". PyOD is a benchmark extra
(`pip install 'fraudwatch[bench]'`), never a runtime dependency.

Data sets: every Parquet file of `--data` (default: the calibration sets beside the repository,
`../shared/data/calibration`) with numeric features and a 0/1 `label`, plus with
`--constructed` the classic "one class as the anomaly" sets built from scikit-learn's bundled
data (breast cancer, wine, iris, digits: a class downsampled to a few per cent), which widen
the check past five files.

    python -m fraudwatch.bench.quality [--data DIR] [--repeats 3] [--constructed]
"""

from __future__ import annotations

import argparse
import json
import os
import warnings
from pathlib import Path

import numpy as np

from fraudwatch.evaluation.metrics import ranking_metrics
from fraudwatch.evaluation.table import TABULAR_MODELS, evaluate_table, load_labelled

PEERS = ("IForest", "ECOD", "COPOD", "HBOS", "LOF", "AutoEncoder")
DEFAULT_DATA = Path(__file__).resolve().parents[4] / "shared" / "data" / "calibration"


def constructed_sets(seed: int = 0) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """One class of a bundled scikit-learn data set, downsampled, as the anomalies."""
    from sklearn import datasets

    plan = {
        "breast_cancer (malignant 5 %)": ("load_breast_cancer", [0], 0.05),
        "wine (class 2, 8 %)": ("load_wine", [2], 0.08),
        "iris (virginica, 8 %)": ("load_iris", [2], 0.08),
        "digits (0, 3 %)": ("load_digits", [0], 0.03),
    }
    out = {}
    rng = np.random.default_rng(seed)
    for name, (loader, classes, share) in plan.items():
        data = getattr(datasets, loader)()
        x, target = data.data.astype(np.float64), data.target
        anomalous = np.isin(target, classes)
        normal = np.flatnonzero(~anomalous)
        k = max(5, round(share * len(normal) / (1 - share)))
        chosen = rng.choice(np.flatnonzero(anomalous), min(k, int(anomalous.sum())), replace=False)
        rows = np.concatenate([normal, chosen])
        out[name] = (x[rows], np.r_[np.zeros(len(normal)), np.ones(len(chosen))].astype(int))
    return out


def _peer(name: str, seed: int):
    from pyod.models.auto_encoder import AutoEncoder
    from pyod.models.copod import COPOD
    from pyod.models.ecod import ECOD
    from pyod.models.hbos import HBOS
    from pyod.models.iforest import IForest
    from pyod.models.lof import LOF

    return {
        "IForest": lambda: IForest(random_state=seed),
        "ECOD": ECOD,
        "COPOD": COPOD,
        "HBOS": HBOS,
        "LOF": LOF,
        "AutoEncoder": lambda: AutoEncoder(random_state=seed, verbose=0),
    }[name]()


def peer_metrics(x: np.ndarray, y: np.ndarray, repeats: int) -> dict[str, dict]:
    out = {}
    x = np.nan_to_num(x)
    for name in PEERS:
        runs = []
        for seed in range(repeats if name in ("IForest", "AutoEncoder") else 1):
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    detector = _peer(name, seed).fit(x)
            except Exception as exc:  # a peer that cannot run on a set is reported, not fatal
                print(f"  {name}: {type(exc).__name__}: {exc}")
                break
            runs.append(ranking_metrics(y, detector.decision_scores_))
        if runs:
            out[f"pyod {name}"] = {
                k: round(float(np.mean([r[k] for r in runs])), 4) for k in ("roc_auc", "pr_auc")
            }
    return out


def _our_metrics(path_or_xy, repeats: int, tmp: Path) -> dict[str, dict]:
    if isinstance(path_or_xy, Path):
        path = path_or_xy
    else:
        import pyarrow as pa
        import pyarrow.parquet as pq

        x, y = path_or_xy
        columns = {f"f{i}": x[:, i] for i in range(x.shape[1])}
        path = tmp / "constructed.parquet"
        pq.write_table(pa.table({**columns, "label": y.astype(np.int8)}), path)
    result = evaluate_table(path, "label", list(TABULAR_MODELS), repeats=repeats)
    return {name: {k: m[k] for k in ("roc_auc", "pr_auc")} for name, m in result.items()}


def mean_ranks(table: dict[str, dict[str, dict]], metric: str) -> dict[str, float]:
    """Mean rank (1 = best, ties share the mean rank) of each method over the data sets."""
    methods = sorted({m for per_set in table.values() for m in per_set})
    ranks: dict[str, list[float]] = {m: [] for m in methods}
    for per_set in table.values():
        values = {m: per_set[m][metric] for m in methods if m in per_set}
        ordered = sorted(values.values(), reverse=True)
        for m, v in values.items():
            first = ordered.index(v) + 1
            ranks[m].append(first + (ordered.count(v) - 1) / 2)
    return {m: round(float(np.mean(r)), 2) for m, r in ranks.items() if r}


def markdown(table: dict[str, dict[str, dict]]) -> str:
    methods = sorted({m for per_set in table.values() for m in per_set})
    pr_rank, roc_rank = mean_ranks(table, "pr_auc"), mean_ranks(table, "roc_auc")
    methods.sort(key=lambda m: pr_rank[m])
    head = "| method | " + " | ".join(table) + " | mean PR-AUC | mean rank PR | mean rank ROC |"
    lines = [head, "|" + "---|" * (len(table) + 4)]
    for m in methods:
        cells = [
            f"{per_set[m]['roc_auc']:.3f} / {per_set[m]['pr_auc']:.3f}" if m in per_set else "—"
            for per_set in table.values()
        ]
        mean_pr = np.mean([p[m]["pr_auc"] for p in table.values() if m in p])
        lines.append(
            f"| {m} | " + " | ".join(cells) + f" | {mean_pr:.3f} | {pr_rank[m]} | {roc_rank[m]} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    import tempfile

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data", type=Path, default=Path(os.environ.get("FRAUDWATCH_CALIBRATION", DEFAULT_DATA))
    )
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--constructed", action="store_true")
    parser.add_argument("--no-peers", action="store_true", help="our models only")
    args = parser.parse_args(argv)
    sources: dict[str, Path | tuple[np.ndarray, np.ndarray]] = {
        p.stem: p for p in sorted(args.data.glob("*.parquet"))
    }
    if args.constructed:
        sources.update(constructed_sets())
    if not sources:
        raise SystemExit(f"no Parquet data sets in {args.data}; pass --data DIR or --constructed")
    table: dict[str, dict[str, dict]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, source in sources.items():
            print(f"{name} ...", flush=True)
            table[name] = _our_metrics(source, args.repeats, Path(tmp))
            if not args.no_peers:
                if isinstance(source, Path):
                    x, y, _ = load_labelled(source, "label")
                else:
                    x, y = source
                table[name].update(peer_metrics(x, y, args.repeats))
    print(markdown(table))
    print(json.dumps(table, indent=2))


if __name__ == "__main__":
    main()
