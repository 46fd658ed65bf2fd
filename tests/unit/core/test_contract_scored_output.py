"""The scored-output contract (contract/scored_output.py) is what the scorer writes, what the
index templates map and what docs/data-contract.md says: a column added in one place and not
the others fails here."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pyarrow.dataset as ds
import pyarrow.parquet as pq
from fraudwatch.contract.scored_output import (
    MODEL_SCORE_COLUMNS,
    RUN_FILE,
    TRANSACTION_COLUMNS,
    TRANSACTIONS_DIR,
    TRANSACTIONS_INDEX,
    USER_COLUMNS,
    USERS_FILE,
    USERS_INDEX,
)
from fraudwatch.models import MODEL_NAMES

REPO = Path(__file__).resolve().parents[3]
TEMPLATES = REPO / "dashboards" / "elasticsearch" / "index-templates"


def test_one_score_column_per_model():
    assert tuple(f"{name}_score" for name in MODEL_NAMES) == MODEL_SCORE_COLUMNS


def test_the_scorer_writes_every_contract_column(scored_dir: Path):
    assert (scored_dir / RUN_FILE).is_file()
    users = pq.read_schema(scored_dir / USERS_FILE).names
    transactions = ds.dataset(scored_dir / TRANSACTIONS_DIR, format="parquet").schema.names
    assert [c for c in USER_COLUMNS if c not in users] == []
    assert [c for c in TRANSACTION_COLUMNS if c not in transactions] == []


def test_the_index_templates_map_every_contract_column():
    for alias, columns in ((TRANSACTIONS_INDEX, TRANSACTION_COLUMNS), (USERS_INDEX, USER_COLUMNS)):
        template = json.loads((TEMPLATES / f"{alias}.json").read_text(encoding="utf-8"))
        mapped = set(template["template"]["mappings"]["properties"])
        assert [c for c in columns if c not in mapped] == [], alias


def test_the_data_contract_document_names_every_column():
    text = (REPO / "docs" / "data-contract.md").read_text(encoding="utf-8")
    for path, columns in (
        (f"SCORED/{USERS_FILE}", USER_COLUMNS),
        (f"SCORED/{TRANSACTIONS_DIR}/part-*.parquet", TRANSACTION_COLUMNS),
    ):
        (row,) = [line for line in text.splitlines() if line.startswith(f"| `{path}` |")]
        named = set(re.findall(r"`([a-z_]+)`", row))
        assert [c for c in columns if c not in named] == [], path


def test_the_run_file_says_what_each_stage_of_the_job_cost(scored_dir: Path):
    # Operators (and the scale bench) read where a run's time and memory went from run.json.
    stages = json.loads((scored_dir / RUN_FILE).read_text(encoding="utf-8"))["stages"]
    assert list(stages) == [
        "extract features",
        "fit models",
        "score transactions",
        "rank and explain",
    ]
    assert all(s["seconds"] >= 0 for s in stages.values())
    peaks = [s["peak_rss_gib_so_far"] for s in stages.values()]
    assert peaks == sorted(peaks) and peaks[0] > 0
