"""The batch scoring job: raw data → features → fitted models → ranked, explained anomalies,
insights and (when ground truth is present) evaluation. See docs/data-contract.md."""

from __future__ import annotations

import json
import resource
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import ibis
import ibis.expr.types as ir
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from fraudwatch import __version__
from fraudwatch.errors import UserError
from fraudwatch.evaluation.metrics import ranking_metrics, recall_by_scenario
from fraudwatch.features.engine import (
    check_engine,
    connect,
    has_table,
    read_raw,
    stream_batches,
)
from fraudwatch.features.transactions import (
    REQUIRED_COLUMNS,
    TRANSACTION_FEATURES,
    transaction_features,
)
from fraudwatch.features.users import USER_FEATURES, user_features
from fraudwatch.locations import storage
from fraudwatch.locations.atomic import output_location
from fraudwatch.models import MODEL_NAMES
from fraudwatch.models.bundle import LevelModels, ModelSettings, ModelVersion, check_models
from fraudwatch.scoring import ranking
from fraudwatch.scoring.batches import feature_matrix, score_batches, score_table
from fraudwatch.scoring.insights import insights
from fraudwatch.scoring.reasons import explain
from fraudwatch.scoring.thresholds import THRESHOLDS

Progress = Callable[[str, int, int | None], None]  # (step, advance, total)


@dataclass
class ScoreOptions:
    engine: str = "duckdb"
    models: list[str] = field(default_factory=lambda: list(MODEL_NAMES))
    fit_users: int = 20_000  # users whose full histories the models are fitted on
    settings: ModelSettings = field(default_factory=ModelSettings)
    models_dir: Path | None = None  # score with this fitted version instead of fitting
    batch_rows: int = 200_000

    def __post_init__(self) -> None:
        check_engine(self.engine)
        self.models = check_models(self.models)
        if self.fit_users < 10:
            raise UserError(f"--fit-users {self.fit_users} is too small; use at least 10")


@dataclass
class ScoreSummary:
    out: str | Path
    transactions: int
    users: int
    model_version: str
    evaluation: dict | None


def _sample_modulus(n_users: int, fit_users: int) -> int:
    """Users with user_id % m == 0 form the training sample; m is odd so that the sample is
    not aligned with any persona (personas are assigned by user_id % 4)."""
    m = max(1, n_users // fit_users)
    return m + 1 if m > 1 and m % 2 == 0 else m


def _ordered(t: ir.Table) -> ir.Table:
    return t.order_by(["user_id", "ts", "tx_id"])


def _fit(
    txf: ir.Table, user_table: pa.Table, options: ScoreOptions, fingerprint: str
) -> ModelVersion:
    m = _sample_modulus(user_table.num_rows, options.fit_users)
    sample_tx = _ordered(txf.filter(txf.user_id % m == 0)).to_pyarrow()
    sample_users = user_table.filter(pa.array(user_table["user_id"].to_numpy() % m == 0))
    tx_models = LevelModels.fit(
        "transactions",
        list(TRANSACTION_FEATURES),
        feature_matrix(sample_tx, list(TRANSACTION_FEATURES)),
        options.models,
        options.settings,
        user_ids=sample_tx["user_id"].to_numpy(),
    )
    external = None
    if "lstm" in tx_models.models:
        # A user's LSTM score is the mean of their transactions' calibrated LSTM scores: the
        # same aggregate the scoring job reads back from the scored transactions.
        scored = score_table(tx_models, sample_tx)
        per_user = _mean_by_user(
            scored["user_id"].to_numpy(), scored["lstm_score"].to_numpy(zero_copy_only=False)
        )
        sample_uid = sample_users["user_id"].to_numpy()
        external = {"lstm": np.array([per_user.get(int(u), np.nan) for u in sample_uid])}
    user_models = LevelModels.fit(
        "users",
        list(USER_FEATURES),
        feature_matrix(sample_users, list(USER_FEATURES)),
        [n for n in options.models if n != "lstm"] or ["iforest"],
        options.settings,
        external=external,
    )
    training = {
        "source_fingerprint": fingerprint,
        "sample": f"user_id % {m} == 0",
        "sample_users": sample_users.num_rows,
        "sample_transactions": sample_tx.num_rows,
    }
    version = ModelVersion(
        ModelVersion.new_version_id(f"{fingerprint}/{m}/{options.models}"),
        {"transactions": tx_models, "users": user_models},
        training,
        thresholds=THRESHOLDS.as_json(),
    )
    return version


def _mean_by_user(user_ids: np.ndarray, values: np.ndarray) -> dict[int, float]:
    values = np.asarray(values, dtype=np.float64)
    ok = ~np.isnan(values)
    uniq, inverse = np.unique(user_ids[ok], return_inverse=True)
    sums = np.bincount(inverse, weights=values[ok], minlength=len(uniq))
    counts = np.bincount(inverse, minlength=len(uniq))
    return dict(zip(uniq.tolist(), (sums / np.maximum(counts, 1)).tolist(), strict=True))


def _score_transactions_duckdb(
    con,
    txf: ir.Table,
    models: LevelModels,
    path: Path,
    options: ScoreOptions,
    progress: Progress | None,
    total: int,
) -> None:
    writer = None
    try:
        for batch in score_batches(models, stream_batches(con, _ordered(txf), options.batch_rows)):
            if writer is None:
                writer = pq.ParquetWriter(path, batch.schema, compression="zstd")
            writer.write_batch(batch)
            if progress:
                progress("score transactions", batch.num_rows, total)
    finally:
        if writer:
            writer.close()


def _score_transactions_spark(
    con, txf: ir.Table, models: LevelModels, folder: Path, progress: Progress | None, total: int
) -> None:
    """Score on Spark executors: the fitted models are broadcast, each partition holds whole
    users sorted by time, and mapInArrow runs the same scoring function as the DuckDB path."""
    from pyspark.sql.pandas.types import from_arrow_schema

    session = con._session
    df = session.sql(con.compile(txf))
    probe = df.limit(50).toArrow()
    schema = from_arrow_schema(
        score_table(models, probe.sort_by([("user_id", "ascending"), ("ts", "ascending")])).schema
    )
    shared = session.sparkContext.broadcast(_artefact(models))

    def score_partition(batches):
        fitted = _from_artefact(*shared.value)
        yield from score_batches(fitted, batches)

    partitions = max(2, session.sparkContext.defaultParallelism)
    (
        df.repartition(partitions, "user_id")
        .sortWithinPartitions("user_id", "ts", "tx_id")
        .mapInArrow(score_partition, schema)
        .write.mode("overwrite")
        .parquet(str(folder))
    )
    if progress:
        progress("score transactions", total, total)


def _cache_on_spark(con, expr: ir.Table, name: str):
    """`expr` kept by the executors (memory, then disk) as the temporary view `name`; the
    cached DataFrame is returned so that it can be unpersisted."""
    from pyspark import StorageLevel

    df = con._session.sql(con.compile(expr)).persist(StorageLevel.MEMORY_AND_DISK)
    df.createOrReplaceTempView(name)
    return df


def _artefact(models: LevelModels) -> tuple[str, dict, dict[str, bytes]]:
    """The fitted models as their saved model-version files (level, spec, file bytes): what
    executors receive. The deep models hold torch modules of classes built at run time, which
    pickle cannot ship; their saved form is what `--models-dir` loads anyway."""
    with tempfile.TemporaryDirectory(prefix="fraudwatch-models-") as folder:
        spec = models.save(Path(folder))
        files = {p.name: p.read_bytes() for p in Path(folder).iterdir() if p.is_file()}
    return models.level, spec, files


def _from_artefact(level: str, spec: dict, files: dict[str, bytes]) -> LevelModels:
    with tempfile.TemporaryDirectory(prefix="fraudwatch-models-") as folder:
        for name, data in files.items():
            (Path(folder) / name).write_bytes(data)
        return LevelModels.load(level, Path(folder), spec)


def _rank_transactions(con, unsorted: ir.Table, out: Path, flagged: int) -> None:
    """Write OUT/transactions/part-*.parquet: every scored transaction ranked (ranking.py), in
    rank order across the files' names. DuckDB writes one file; Spark one per partition of
    its distributed sort."""
    folder = out / "transactions"
    if con.name == "duckdb":
        folder.mkdir()
        ranked = ranking.TRANSACTIONS.ibis(unsorted, flagged)
        con.con.execute(
            f"COPY ({con.compile(ranked)}) TO '{folder / 'part-0.parquet'}' "
            "(FORMAT parquet, COMPRESSION zstd)"
        )
        return
    session = con._session
    ranked, cached = ranking.TRANSACTIONS.spark(session.sql(con.compile(unsorted)), flagged)
    try:
        ranked.write.option("compression", "zstd").parquet(str(folder))
    finally:
        cached.unpersist()
    _name_spark_parts(folder)


def _name_spark_parts(folder: Path) -> None:
    """Spark's part files renamed part-0.parquet, part-1.parquet, ... in partition order (the
    width grows with the count so that names sort in rank order); its marker and checksum
    files removed, so that the folder holds what the DuckDB path writes."""
    parts = sorted(folder.glob("part-*.parquet"))
    for other in folder.iterdir():
        if other not in parts:
            other.unlink()
    width = len(str(max(len(parts) - 1, 0)))
    for i, part in enumerate(parts):
        part.rename(folder / f"part-{i:0{width}d}.parquet")


def _read_scored(con, location: Path) -> ir.Table:
    """Scored Parquet (a file, or a folder of Spark's parts) as a table of the job's engine."""
    if con.name == "duckdb":
        pattern = location / "*.parquet" if location.is_dir() else location
        return con.read_parquet(str(pattern), hive_partitioning=False)
    return con.read_parquet(str(location.absolute()))


def _to_arrow(con, expr: ir.Table) -> pa.Table:
    """Collect a (small or narrow) result to the driver; Spark's own Arrow collection rather
    than Ibis's detour through pandas."""
    if con.name == "duckdb":
        return expr.to_pyarrow()
    return con._session.sql(con.compile(expr)).toArrow()


def _score_users(
    version: ModelVersion, users: pa.Table, lstm_by_user: dict | None, flagged_share: float
) -> pa.Table:
    models = version.levels["users"]
    x = feature_matrix(users, list(USER_FEATURES))
    external = None
    if lstm_by_user is not None and "lstm" in models.calibration:
        uid = users["user_id"].to_numpy()
        external = {
            "lstm": np.array([lstm_by_user.get(int(u), np.nan) for u in uid], dtype=np.float64)
        }
    z, pct, ensemble = models.score(x, external=external)
    top, reasons = explain(z, x, list(USER_FEATURES))
    order = ranking.USERS.order(ensemble, users["user_id"].to_numpy())
    n_flagged = ranking.flagged_count(flagged_share, len(ensemble))
    columns: dict[str, pa.Array] = {"rank": pa.array(np.arange(1, len(order) + 1))}
    columns["user_id"] = users["user_id"].take(order)
    columns["persona"] = users["persona"].take(order)
    columns["ensemble_score"] = pa.array(ensemble[order])
    for name in MODEL_NAMES:
        v = pct.get(name)
        columns[f"{name}_score"] = (
            pa.array(v[order], mask=np.isnan(v[order]))
            if v is not None
            else pa.nulls(len(order), pa.float64())
        )
    columns["flagged"] = pa.array(np.arange(len(order)) < n_flagged)
    columns["reasons"] = reasons.take(pa.array(order))
    columns["top_features"] = top.take(pa.array(order))
    for f in USER_FEATURES:
        columns[f] = users[f].take(order)
    for c in ("label", "scenario"):
        columns[c] = users[c].take(order)
    return pa.table(columns)


def _evaluate(con, scored_tx: ir.Table, users: pa.Table, scenarios: tuple[str, ...]) -> dict | None:
    """Ranking metrics of every model and the ensemble against the ground truth, and recall
    per scenario for each of them (every scenario in `scenarios` listed, victims or not)."""
    if users["label"].null_count == len(users) or not pa.compute.sum(users["label"]).as_py():
        return None
    out: dict = {"users": {}, "transactions": {}}
    names = (*MODEL_NAMES, "ensemble")
    # In rank order (as the DuckDB path reads its one file), sorted here rather than by a
    # second distributed sort: the metrics break score ties by position.
    columns = ("rank", "label", "scenario", *(f"{n}_score" for n in names))
    tx = _to_arrow(con, scored_tx.select(*columns)).sort_by("rank")
    for level, table in (("users", users), ("transactions", tx)):
        label = table["label"].to_numpy(zero_copy_only=False).astype(int)
        scores = {}
        for name in names:
            values = table[f"{name}_score"].to_numpy(zero_copy_only=False).astype(np.float64)
            if not np.all(np.isnan(values)):
                scores[name] = values
                out[level][name] = ranking_metrics(label, values)
        out[level]["by_scenario"] = recall_by_scenario(
            label, scores, table["scenario"], known=scenarios
        )
    return out


def _raw_manifest(root: str | Path) -> dict:
    text = storage.read_text(f"{str(root).rstrip('/')}/manifest.json")
    return json.loads(text) if text else {}


def _raw_fingerprint(root: str | Path) -> str:
    return _raw_manifest(root).get("fingerprint", "unknown")


class StageClock:
    """Wall seconds of each stage of the job, and the process's peak resident memory so far at
    its end (a Spark engine's JVM is another process: not counted), for run.json."""

    def __init__(self) -> None:
        self.stages: dict[str, dict[str, float]] = {}
        self._start = time.perf_counter()

    def done(self, stage: str) -> None:
        now = time.perf_counter()
        peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        self.stages[stage] = {
            "seconds": round(now - self._start, 3),
            "peak_rss_gib_so_far": round(peak_kib / 1024**2, 3),
        }
        self._start = now


def score(
    input_dir: str | Path,
    out: str | Path,
    options: ScoreOptions,
    overwrite: bool = False,
    progress: Progress | None = None,
) -> ScoreSummary:
    """Run the scoring job; `out` appears complete or not at all."""
    clock = StageClock()
    con = connect(options.engine)
    tx = read_raw(con, input_dir, "transactions", REQUIRED_COLUMNS)
    if tx.count().to_pyarrow().as_py() == 0:
        raise UserError(f"{input_dir}/transactions has no rows; nothing to score")
    logins = (
        read_raw(con, input_dir, "logins", {"user_id": "int"})
        if has_table(input_dir, "logins")
        else None
    )
    txf = transaction_features(tx)
    if has_table(input_dir, "users"):
        profile = read_raw(con, input_dir, "users", {"user_id": "int", "persona": "string"}).select(
            "user_id", "persona"
        )
        txf = txf.left_join(profile, "user_id").drop("user_id_right")
    else:
        txf = txf.mutate(persona=ibis.null("string"))
    if "label" not in txf.columns:
        txf = txf.mutate(label=ibis.literal(0, "int8"), scenario=ibis.null("string"))
    with output_location(out, overwrite) as tmp:
        step = "extract features"
        if progress:
            progress(step, 0, 1)
        # Computed once: the fit sample, the user features and the scoring stream read it.
        cached_txf = None
        if options.engine == "duckdb":
            con.con.execute(f"CREATE TEMP TABLE fraudwatch_txf AS {con.compile(txf)}")
            txf = con.table("fraudwatch_txf")
        else:
            cached_txf = _cache_on_spark(con, txf, "fraudwatch_txf")
            txf = con.table("fraudwatch_txf")
        user_table = user_features(txf, logins).to_pyarrow()
        truth = (
            txf.group_by("user_id")
            .aggregate(
                persona=txf.persona.arbitrary(),
                label=txf.label.max().cast("int8"),
                scenario=txf.scenario.max(),
            )
            .to_pyarrow()
        )
        user_table = _join_on_user(user_table, truth)
        n_users, n_tx = user_table.num_rows, int(user_table["tx_count"].to_numpy().sum())
        clock.done("extract features")
        if progress:
            progress(step, 1, 1)
            progress("fit models", 0, 1)
        if options.models_dir:
            version = ModelVersion.load(options.models_dir)
        else:
            version = _fit(txf, user_table, options, _raw_fingerprint(input_dir))
        clock.done("fit models")
        if progress:
            progress("fit models", 1, 1)
        flagged_share = THRESHOLDS.flagged_share
        unsorted = tmp / "unsorted"
        unsorted.mkdir()
        # Where the scored rows are ranked, aggregated and read back: Spark on the Spark path;
        # on the DuckDB path a connection of its own (its own memory budget), the feature
        # table that the scoring stream read staying behind in `con`.
        results = con if options.engine == "spark" else connect("duckdb")
        if options.engine == "spark":
            _score_transactions_spark(
                con, txf, version.levels["transactions"], unsorted / "spark", progress, n_tx
            )
            if cached_txf is not None:
                cached_txf.unpersist()
            scored_unsorted = _read_scored(results, unsorted / "spark")
        else:
            _score_transactions_duckdb(
                con,
                txf,
                version.levels["transactions"],
                unsorted / "part-0.parquet",
                options,
                progress,
                n_tx,
            )
            scored_unsorted = _read_scored(results, unsorted / "part-0.parquet")
        lstm_by_user = None
        if "lstm" in version.levels["transactions"].models:
            means = _to_arrow(
                results,
                scored_unsorted.group_by("user_id").aggregate(
                    lstm=scored_unsorted.lstm_score.mean()
                ),
            )
            lstm_by_user = {
                int(u): (np.nan if v is None else v)
                for u, v in zip(
                    means["user_id"].to_pylist(), means["lstm"].to_pylist(), strict=True
                )
            }
        clock.done("score transactions")
        if progress:
            progress("rank and explain", 0, 3)
        _rank_transactions(
            results, scored_unsorted, tmp, ranking.flagged_count(flagged_share, n_tx)
        )
        shutil.rmtree(unsorted)
        if progress:
            progress("rank and explain", 1, 3)
        scored_users = _score_users(version, user_table, lstm_by_user, flagged_share)
        pq.write_table(scored_users, tmp / "users.parquet", compression="zstd")
        scored_tx = _read_scored(results, tmp / "transactions")
        (tmp / "insights.json").write_text(json.dumps(insights(scored_tx), indent=2) + "\n")
        if progress:
            progress("rank and explain", 1, 3)
        # The scenarios the data was generated with, so that one without victims is reported.
        scenarios = tuple(_raw_manifest(input_dir).get("scenarios", ()))
        evaluation = _evaluate(results, scored_tx, scored_users, scenarios)
        if evaluation:
            (tmp / "evaluation.json").write_text(json.dumps(evaluation, indent=2) + "\n")
        version.save(tmp / "models", metrics=evaluation)
        clock.done("rank and explain")
        run = {
            "fraudwatch": __version__,
            "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "input": str(input_dir),
            "engine": options.engine,
            "models": options.models,
            "model_version": version.version,
            "counts": {"users": n_users, "transactions": n_tx},
            "flagged_share": flagged_share,
            "thresholds": THRESHOLDS.as_json(),
            "stages": clock.stages,
        }
        if options.engine == "spark":
            context = con._session.sparkContext
            run["spark"] = {"master": context.master, "application_id": context.applicationId}
        (tmp / "run.json").write_text(json.dumps(run, indent=2) + "\n")
        if progress:
            progress("rank and explain", 1, 3)
    return ScoreSummary(out, n_tx, n_users, version.version, evaluation)


def _join_on_user(features: pa.Table, truth: pa.Table) -> pa.Table:
    """Attach persona and ground truth to the user features (both keyed by user_id)."""
    import pyarrow.compute as pc

    features = features.sort_by("user_id")
    truth = truth.sort_by("user_id")
    if not pc.all(pc.equal(features["user_id"], truth["user_id"])).as_py():
        raise UserError(
            "user features and transactions disagree on the set of users; rerun the job"
        )
    for c in ("persona", "label", "scenario"):
        features = features.append_column(c, truth[c])
    return features
