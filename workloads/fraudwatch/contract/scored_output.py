"""The scored output's contract: what `fraudwatch score --out SCORED` writes, and the
Elasticsearch aliases the scored rows are published to (docs/data-contract.md).

The scorer writes it; the publishers (Elasticsearch, Tableau), the streaming scorer, the
intervention service, the feedback loop and the dashboards read it. Columns are added, never
renamed. The per-model score columns are built from the model names (`MODEL_NAMES`), so a new
model gets its column in every reader at once. `scored_directory.open_scored` opens a scored
directory.
"""

from __future__ import annotations

from fraudwatch.models import MODEL_NAMES

#: The files of a scored directory.
USERS_FILE = "users.parquet"
TRANSACTIONS_DIR = "transactions"  # part-*.parquet, in rank order across the files' names
RUN_FILE = "run.json"

#: The mean of the per-model scores that are present, in [0, 1].
ENSEMBLE_SCORE = "ensemble_score"


def score_column(model: str) -> str:
    """The column of one model's score, e.g. `iforest_score`: its percentile against the
    training sample's scores, in [0, 1]; null when that model was not run."""
    return f"{model}_score"


#: One score column per model, in MODEL_NAMES order.
MODEL_SCORE_COLUMNS = tuple(score_column(name) for name in MODEL_NAMES)
#: The ensemble's score, then each model's.
SCORE_COLUMNS = (ENSEMBLE_SCORE, *MODEL_SCORE_COLUMNS)
#: What the detector makes of a row: flagged (in the top `contamination` share), the reasons
#: (human readable, `; `-separated) and the features that deviate most.
VERDICT_COLUMNS = ("flagged", "reasons", "top_features")
#: Ground truth, for evaluation only (generated data carries it).
GROUND_TRUTH_COLUMNS = ("label", "scenario")

#: SCORED/users.parquet, one row per user sorted by ensemble_score descending (rank 1 = most
#: anomalous). The user features (features/users.py) come between top_features and label.
USER_COLUMNS = (
    "rank",
    "user_id",
    "persona",
    *SCORE_COLUMNS,
    *VERDICT_COLUMNS,
    *GROUND_TRUTH_COLUMNS,
)
#: The transaction event's fields every scored transaction carries through unchanged (the
#: feature step passes them along beside the features: features/transactions.py).
TRANSACTION_CONTEXT_COLUMNS = (
    "tx_id",
    "user_id",
    "ts",
    "amount",
    "currency",
    "tx_type",
    "channel",
    "country",
    "ip",
    "device_id",
    "counterparty",
    "status",
)
#: SCORED/transactions/part-*.parquet, one row per transaction sorted by ensemble_score
#: descending.
TRANSACTION_COLUMNS = (
    "rank",
    *TRANSACTION_CONTEXT_COLUMNS,
    "persona",
    "hour",
    *SCORE_COLUMNS,
    *VERDICT_COLUMNS,
    *GROUND_TRUTH_COLUMNS,
)

#: The Elasticsearch rollover aliases of the scored rows (`fraudwatch publish --to
#: elasticsearch`; the streaming scorer writes transactions), each with the index template
#: of its name under dashboards/elasticsearch/index-templates/.
TRANSACTIONS_INDEX = "fraudwatch-transactions"
USERS_INDEX = "fraudwatch-users"
