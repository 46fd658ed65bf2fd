"""The stream's features and scores: the batch job's feature expression (`transaction_features`)
compiled once to DuckDB SQL and run over a micro-batch and its users' kept history, then the
model version's members, ensemble and reasons (`scoring.batches.score_table`). The inline
decisions of the intervention service score through the same `score_transactions`."""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass, field, replace
from typing import Any

import pyarrow as pa

from fraudwatch.streaming.user_history import UserHistory


def _feature_expression(
    source: Any, wanted: Any, context: bool, thresholds: dict[str, float] | None = None
) -> Any:
    """The batch job's features of `source` (the batch and its users' history) for the
    transactions whose tx_id is in `wanted.batch_tx_id`: only those rows, or with `context`
    every row and `in_batch` telling them apart; ordered by user and time."""
    import ibis

    from fraudwatch.features.transactions import transaction_features

    features = transaction_features(source, thresholds)
    if context:
        features = features.mutate(in_batch=features.tx_id.isin(wanted.batch_tx_id))
    else:
        features = features.semi_join(wanted, features.tx_id == wanted.batch_tx_id)
    return features.order_by(["user_id", "ts", "tx_id"]).mutate(persona=ibis.null("string"))


#: The names the compiled feature query reads: the transactions (the batch and its users'
#: history) and the batch's tx_ids.
_FEATURE_INPUT = "fraudwatch_feature_input"
_FEATURE_WANTED = "fraudwatch_feature_wanted"


#: A simple CASE over at least this many distinct strings, each giving a number and NULL
#: otherwise, is read from a lookup table in the compiled SQL (see `_compiled_sql`).
_LOOKUP_MIN_BRANCHES = 32


def _compiled_sql(
    features: Any, as_map: bool = False
) -> tuple[str, dict[str, tuple[tuple[str, str], ...]]]:
    """DuckDB SQL of the expression, with its long CASE tables read from lookup tables.

    The feature expression looks up country coordinates with a CASE over every country
    (`features.transactions._coordinate`), and the haversine formula reads them twelve times:
    binding those 2,500 branches is most of what the query costs on one user's rows, every
    time it runs. A scalar subquery on a table of the same (key, value) pairs gives the same
    value (NULL for a key not listed) and binds in a fraction of that time. With `as_map`
    the table is read as a MAP(key, value) session variable of the same name instead
    (`getvariable(name)[key]`, also NULL for a key not listed): no subquery to plan and join
    per lookup, the cheaper form on a few rows (`FeatureQuery.small_sql`). Returns the SQL
    and the lookup tables it reads: name -> rows of (key, value as SQL)."""
    import sqlglot
    import sqlglot.expressions as sge
    from ibis.backends.sql.compilers.duckdb import compiler

    lookups: dict[str, tuple[tuple[str, str], ...]] = {}

    def pairs_of(node: Any) -> tuple[tuple[str, str], ...] | None:
        default = node.args.get("default")
        ifs = node.args.get("ifs") or []
        if node.this is None or len(ifs) < _LOOKUP_MIN_BRANCHES:
            return None
        if not (
            isinstance(default, sge.Cast)
            and isinstance(default.this, sge.Null)
            and default.to.is_type("double")
        ):
            return None
        pairs = []
        for branch in ifs:
            key, value = branch.this, branch.args.get("true")
            number = value.this if isinstance(value, sge.Neg) else value
            if not (isinstance(key, sge.Literal) and key.is_string):
                return None
            if not (isinstance(number, sge.Literal) and not number.is_string):
                return None
            pairs.append((str(key.this), value.sql(dialect="duckdb")))
        # CASE takes the first branch that matches: a table needs every key once.
        return tuple(pairs) if len({k for k, _ in pairs}) == len(pairs) else None

    def as_lookup(node: Any) -> Any:
        if not isinstance(node, sge.Case):
            return node
        pairs = pairs_of(node)
        if pairs is None:
            return node
        digest = hashlib.sha256(repr(pairs).encode()).hexdigest()[:16]
        name = f"fraudwatch_lookup_{digest}"
        lookups[name] = pairs
        operand = node.this.sql(dialect="duckdb")
        if as_map:
            return sqlglot.parse_one(f"getvariable('{name}')[{operand}]", read="duckdb")
        return sqlglot.parse_one(
            f"(SELECT lookup_value FROM {name} WHERE lookup_key = {operand})", read="duckdb"
        )

    tree = compiler.to_sqlglot(features.unbind())
    return tree.transform(as_lookup).sql(dialect="duckdb"), lookups


@dataclass(frozen=True)
class FeatureQuery:
    """The batch job's feature expression (`transaction_features`), compiled once to DuckDB
    SQL over named input tables: building and compiling the Ibis expression costs far more
    than running it on a micro-batch, let alone on one transaction (issue 19)."""

    sql: str
    #: The same query for a few rows (a decision's user): lookups read from MAP variables
    #: (see `_compiled_sql`), run where planning, not the rows, is the cost (`SMALL_INPUT_ROWS`).
    small_sql: str
    #: The Ibis expression the SQL was compiled from: its schema types the result exactly as
    #: the backend's own `to_pyarrow` would.
    expr: Any
    #: The Arrow schema the inputs are given in (what `ibis.memtable` would register).
    input_schema: pa.Schema
    wanted_schema: pa.Schema
    #: The lookup tables the SQL reads (see `_compiled_sql`): name -> (key, value SQL) rows.
    lookups: dict[str, tuple[tuple[str, str], ...]] = field(default_factory=dict)
    #: Tells the compiled queries apart: the name of its prepared statement.
    key: int = 0

    @classmethod
    def build(
        cls, schema: pa.Schema, tx_id_type: pa.DataType, context: bool, thresholds: Any
    ) -> FeatureQuery:
        import ibis

        source = ibis.table(ibis.Schema.from_pyarrow(schema), name=_FEATURE_INPUT)
        wanted = ibis.table(
            ibis.Schema.from_pyarrow(pa.schema([("batch_tx_id", tx_id_type)])),
            name=_FEATURE_WANTED,
        )
        features = _feature_expression(source, wanted, context, dict(thresholds))
        sql, lookups = _compiled_sql(features)
        small_sql, _ = _compiled_sql(features, as_map=True)
        return cls(
            sql=sql,
            small_sql=small_sql,
            expr=features,
            input_schema=source.schema().to_pyarrow(),
            wanted_schema=wanted.schema().to_pyarrow(),
            lookups=lookups,
        )


#: Compiled queries by (input schema, tx_id type, context, reporting thresholds): the
#: thresholds are literals in the SQL, so a change of FRAUDWATCH_REPORTING_THRESHOLDS
#: compiles a new query.
_FEATURE_QUERIES: dict[tuple[Any, ...], FeatureQuery] = {}
_FEATURE_QUERIES_LOCK = threading.Lock()
#: One in-memory DuckDB connection per thread, with the queries it has prepared: the decision
#: route scores on several threads, and registered input tables are per connection.
_FEATURE_DB = threading.local()


def feature_query(schema: pa.Schema, tx_id_type: pa.DataType, context: bool) -> FeatureQuery:
    """The compiled feature query for inputs of this schema (compiled on first use)."""
    from fraudwatch.contract.regulatory import reporting_thresholds

    thresholds = tuple(sorted(reporting_thresholds().items()))
    key = (schema, tx_id_type, context, thresholds)
    query = _FEATURE_QUERIES.get(key)
    if query is None:
        with _FEATURE_QUERIES_LOCK:
            query = _FEATURE_QUERIES.get(key)
            if query is None:
                query = FeatureQuery.build(schema, tx_id_type, context, thresholds)
                query = replace(query, key=len(_FEATURE_QUERIES))
                _FEATURE_QUERIES[key] = query
    return query


#: Inputs (the transactions and their users' history) of at most this many rows run the
#: query as `FeatureQuery.small_sql` on this thread's connection for few rows (see
#: `_FeatureConnection`): a decision's input is one user's kept history and the transaction.
SMALL_INPUT_ROWS = 2_048
#: DuckDB optimizer passes the few-rows connection skips: on a decision's rows they cost more
#: to run than they save (statistics propagation over the lookup MAPs alone was ~9 ms, the
#: common subexpressions of the haversine ~3 ms, of a ~35 ms query). Neither changes a
#: result: the same bits come out (tests/unit/core/test_stream_features_compiled.py).
SMALL_INPUT_SKIPPED_OPTIMIZERS = ("statistics_propagation", "common_subexpressions")


class _FeatureConnection:
    """This thread's in-memory DuckDB connection and the feature queries it has prepared.

    Each thread has two: one for micro-batches, one for few rows (`small`), where DuckDB's
    binding and planning of the query, not its rows, is the cost (issue 19): that one runs
    the query as `FeatureQuery.small_sql` on one thread, without the optimizer passes of
    `SMALL_INPUT_SKIPPED_OPTIMIZERS`."""

    def __init__(self, small: bool = False) -> None:
        import duckdb

        self.small = small
        self.db = duckdb.connect()
        # As the Ibis backend sets up its connections.
        self.db.execute("SET TimeZone = 'UTC'")
        self.db.execute("SET python_enable_replacements = false")
        if small:
            self.db.execute("SET threads = 1")
            skipped = ",".join(SMALL_INPUT_SKIPPED_OPTIMIZERS)
            self.db.execute(f"SET disabled_optimizers = '{skipped}'")
        self.prepared: set[str] = set()

    @classmethod
    def of_this_thread(cls, small: bool = False) -> _FeatureConnection:
        name = "small" if small else "connection"
        connection = getattr(_FEATURE_DB, name, None)
        if connection is None:
            connection = cls(small)
            setattr(_FEATURE_DB, name, connection)
        return connection

    def run(self, query: FeatureQuery, together: pa.Table, batch_tx_ids: pa.Array) -> pa.Table:
        """The query's features of `together` for the `batch_tx_ids`."""
        from ibis.backends.duckdb.converter import DuckDBPyArrowData

        statement = f"fraudwatch_features_{query.key}"
        self.db.register(_FEATURE_INPUT, together.cast(query.input_schema))
        self.db.register(_FEATURE_WANTED, pa.table([batch_tx_ids], schema=query.wanted_schema))
        try:
            if statement not in self.prepared:
                for name, rows in query.lookups.items():
                    values = ", ".join(
                        "('{}', {})".format(key.replace("'", "''"), value) for key, value in rows
                    )
                    self.db.execute(
                        f"CREATE TEMP TABLE IF NOT EXISTS {name} "
                        "(lookup_key VARCHAR, lookup_value DOUBLE)"
                    )
                    self.db.execute(f"DELETE FROM {name}")
                    self.db.execute(f"INSERT INTO {name} VALUES {values}")
                    if self.small:
                        self.db.execute(
                            f"SET VARIABLE {name} = "
                            f"(SELECT map(list(lookup_key), list(lookup_value)) FROM {name})"
                        )
                sql = query.small_sql if self.small else query.sql
                self.db.execute(f"PREPARE {statement} AS {sql}")
                self.prepared.add(statement)
            # A prepared statement: the SQL is parsed once per connection, and the relation
            # layer does not bind it a second time to learn its schema (binding is most of
            # what the query costs on a few rows).
            result = self.db.sql(f"EXECUTE {statement}").to_arrow_table()
        finally:
            self.db.unregister(_FEATURE_INPUT)
            self.db.unregister(_FEATURE_WANTED)
        return query.expr.__pyarrow_result__(result, data_mapper=DuckDBPyArrowData)


def batch_features(
    table: pa.Table, history: UserHistory | None = None, context: bool = False
) -> pa.Table:
    """Per-transaction features of a micro-batch's transactions, computed with the batch job's
    expression over the batch and (when given) its users' kept history, ordered by user and
    time. Only the batch's rows are returned, unless `context`: then the history's rows come
    too, with `in_batch` telling them apart (the LSTM reads them as the sequence so far).
    The expression is compiled once per input schema (`feature_query`) and run on this
    thread's DuckDB connection (the one for few rows up to `SMALL_INPUT_ROWS`)."""
    together = history.with_history(table) if history is not None else table
    tx_ids = table["tx_id"].combine_chunks()
    query = feature_query(together.schema, tx_ids.type, context)
    small = together.num_rows <= SMALL_INPUT_ROWS
    return _FeatureConnection.of_this_thread(small).run(query, together, tx_ids)


def batch_features_uncompiled(
    table: pa.Table, history: UserHistory | None = None, context: bool = False
) -> pa.Table:
    """`batch_features` as it was before the compiled query: the Ibis expression built and
    compiled on every call over in-memory tables, on a fresh connection. Kept as the bench's
    baseline and the test's reference (tests/unit/core/test_stream_features_compiled.py)."""
    import ibis

    together = history.with_history(table) if history is not None else table
    con = ibis.duckdb.connect()
    con.raw_sql("SET TimeZone = 'UTC'")
    wanted = ibis.memtable(table.select(["tx_id"]).rename_columns(["batch_tx_id"]))
    return con.to_pyarrow(_feature_expression(ibis.memtable(together), wanted, context))


def score_transactions(
    version: Any, table: pa.Table, history: UserHistory | None = None, compiled: bool = True
) -> pa.Table:
    """Features and scores of a micro-batch's transactions (see `batch_features`). With a
    history and an LSTM, the LSTM runs over each user's kept history and the batch, so that
    every transaction with an earlier one has an LSTM score, as in the batch job.
    `compiled=False` builds the feature expression afresh (the bench's baseline)."""
    from fraudwatch.scoring.batches import score_table

    features_of = batch_features if compiled else batch_features_uncompiled
    models = version.levels["transactions"]
    if history is None or "lstm" not in models.models:
        return score_table(models, features_of(table, history))
    features = features_of(table, history, context=True)
    keep = features["in_batch"].to_numpy(zero_copy_only=False).astype(bool)
    return score_table(models, features.drop_columns(["in_batch"]), keep=keep)
