"""The personal-data inventory is complete (issue 20, item 1): every field of the raw, scored
and event contracts, of the Elasticsearch index templates and of the audit entry is classified
in fraudwatch.contract.personal_data, and docs/privacy.md names every classified field.

The scored and raw columns are read from what the real `fraudwatch generate` and `fraudwatch
score` wrote (the session fixtures of conftest.py), from the code that writes them, and from
the tables of docs/data-contract.md, so a column added in any of the three is caught."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from fraudwatch.contract.personal_data import (
    FIELDS,
    REDACTED,
    DataClass,
    Masking,
    classify,
    mask_value,
    masked_fields,
    network_prefix,
    pseudonym,
)
from fraudwatch.features.users import USER_FEATURES
from fraudwatch.intervention.audit import STORED_FIELDS
from fraudwatch.models import MODEL_NAMES
from fraudwatch.scoring.batches import PASS_THROUGH
from fraudwatch.streaming.schemas import ENVELOPES
from pydantic import BaseModel

REPO = Path(__file__).resolve().parents[3]
PRIVACY_DOC = REPO / "docs" / "privacy.md"
DATA_CONTRACT = REPO / "docs" / "data-contract.md"
TEMPLATES = sorted((REPO / "dashboards" / "elasticsearch" / "index-templates").glob("*.json"))


def unclassified(names: Iterable[str]) -> list[str]:
    return sorted({n for n in names if classify(n) is None})


def model_fields(model: type[BaseModel]) -> set[str]:
    """Every field name of a pydantic model, nested models included."""
    names: set[str] = set()
    for name, info in model.model_fields.items():
        names.add(name)
        kind = info.annotation
        if isinstance(kind, type) and issubclass(kind, BaseModel):
            names |= model_fields(kind)
    return names


def template_fields(properties: dict, prefix: str = "") -> set[str]:
    """Every property name of an index template's mapping, at any depth."""
    names: set[str] = set()
    for name, spec in properties.items():
        names.add(name)
        names |= template_fields(spec.get("properties", {}), f"{prefix}{name}.")
    return names


def contract_columns(section: str) -> set[str]:
    """The column names the tables of one section of docs/data-contract.md list for the
    Parquet files (backticked names outside parentheses, in the `columns` cell)."""
    text = DATA_CONTRACT.read_text(encoding="utf-8")
    body = text.split(f"## {section}")[1].split("\n## ")[0]
    names: set[str] = set()
    for line in body.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 3 or ".parquet" not in cells[0]:
            continue
        columns = re.sub(r"\([^()]*\)", "", cells[2])
        names |= {n for n in re.findall(r"`([a-z_][a-z0-9_]*)`", columns)}
    return names


# --- the contracts are classified ------------------------------------------------------
def test_every_event_field_is_classified():
    names: set[str] = set()
    for envelope in ENVELOPES.values():
        names |= model_fields(envelope)
    assert {"ip", "device_id", "counterparty", "method", "endpoint"} <= names
    assert unclassified(names) == []


@pytest.mark.parametrize("template", TEMPLATES, ids=lambda p: p.stem)
def test_every_index_template_field_is_classified(template: Path):
    doc = json.loads(template.read_text(encoding="utf-8"))
    names = template_fields(doc["template"]["mappings"]["properties"])
    assert names, f"{template.name} maps no fields"
    assert unclassified(names) == []


def test_the_user_features_under_features_are_classified():
    # `features` in fraudwatch-users is a dynamic object holding the user features.
    assert unclassified(USER_FEATURES) == []


def test_every_column_the_scoring_code_writes_is_classified():
    names = {*PASS_THROUGH, *USER_FEATURES, "rank", "flagged", "reasons", "top_features"}
    names |= {"ensemble_score", *(f"{m}_score" for m in MODEL_NAMES)}
    assert unclassified(names) == []


def test_every_column_the_data_contract_lists_is_classified():
    raw, scored = contract_columns("Raw data"), contract_columns("Scored data")
    assert {"ip", "device_id", "home_country", "endpoint"} <= raw
    assert {"ensemble_score", "ip", "device_id", "reasons"} <= scored
    assert unclassified(raw | scored) == []


def test_every_column_of_the_real_scored_output_is_classified(scored_dir: Path):
    users = pq.read_schema(scored_dir / "users.parquet").names
    transactions: set[str] = set()
    for part in (scored_dir / "transactions").glob("part-*.parquet"):
        transactions |= set(pq.read_schema(part).names)
    assert "ip" in transactions and "device_id" in transactions
    assert unclassified([*users, *transactions]) == []


def test_every_column_of_the_real_raw_data_is_classified(raw_dir: Path):
    names: set[str] = set()
    for table in ("users", "transactions", "logins", "api_calls"):
        for part in sorted((raw_dir / table).rglob("*.parquet"))[:1]:
            names |= set(pq.read_schema(part).names)
    assert {"ip", "device_id", "endpoint", "home_country"} <= names
    # hive partition directories (date=...) are not columns of the files
    assert unclassified(names - {"date"}) == []


def test_every_audit_entry_field_is_classified():
    assert unclassified(STORED_FIELDS) == []  # format 2: v, commitments, erased too


def test_the_check_reports_a_field_nobody_classified():
    assert unclassified(["user_id", "shoe_size"]) == ["shoe_size"]


# --- dashboard outputs ---------------------------------------------------------------------
def test_the_tableau_extracts_carry_no_masked_field():
    from fraudwatch.publish.tableau import LEVELS

    for level, columns in LEVELS.items():
        names = [c.name for c in columns]
        assert unclassified(names) == [], level
        assert sorted(set(names) & set(masked_fields())) == [], level
    tds = (REPO / "dashboards" / "tableau" / "fraudwatch.tds").read_text(encoding="utf-8")
    for name in masked_fields():
        assert f"[{name}]" not in tds and f"'{name}'" not in tds and f'"{name}"' not in tds


def test_the_grafana_dashboards_show_no_masked_field():
    pattern = re.compile(r"\b(" + "|".join(masked_fields()) + r")\b")
    for path in sorted((REPO / "dashboards" / "grafana").rglob("*.json")):
        assert pattern.findall(path.read_text(encoding="utf-8")) == [], path.name


# --- the document names them ------------------------------------------------------------
def test_docs_privacy_names_every_classified_field():
    text = PRIVACY_DOC.read_text(encoding="utf-8")
    missing = sorted(name for name in FIELDS if f"`{name}`" not in text)
    assert missing == [], f"docs/privacy.md does not mention {missing}"


def test_docs_privacy_names_every_class_and_masking_rule():
    text = PRIVACY_DOC.read_text(encoding="utf-8")
    assert [c.value for c in DataClass if c.value not in text] == []
    assert [m.value for m in Masking if f"`{m.value}`" not in text] == []


# --- the rules ---------------------------------------------------------------------------
def test_ip_addresses_and_device_ids_are_masked_other_fields_shown():
    assert masked_fields() == {
        "ip": Masking.NETWORK_PREFIX,
        "device_id": Masking.KEYED_HASH,
        "counterparty": Masking.KEYED_HASH,
    }
    assert classify("ip").data_class is DataClass.NETWORK_IDENTIFIER  # type: ignore[union-attr]
    assert mask_value("country", "DE", None) == "DE"
    assert mask_value("ip", None, None) is None


@pytest.mark.parametrize(
    ("address", "network"),
    [
        ("203.0.113.77", "203.0.113.0/24"),
        ("2001:db8:abcd:12::1", "2001:db8:abcd::/48"),
        (" 192.0.2.1 ", "192.0.2.0/24"),
        ("not-an-ip", REDACTED),
        ("", REDACTED),
    ],
)
def test_network_prefix(address: str, network: str):
    assert network_prefix(address) == network
    assert mask_value("ip", address, None) == network


def test_a_pseudonym_needs_the_key_and_is_not_a_plain_hash():
    import hashlib

    key = b"k" * 32
    first = mask_value("device_id", "dev-42", key)
    assert first == pseudonym("dev-42", key, "device_id") == mask_value("device_id", "dev-42", key)
    assert first.startswith("pn_") and len(first) == 3 + 16
    assert "dev-42" not in first
    assert first != mask_value("device_id", "dev-42", b"q" * 32)  # another key, another name
    assert first != mask_value("device_id", "dev-43", key)
    assert first[3:] not in hashlib.sha256(b"dev-42").hexdigest()
    # the same text in another field is another pseudonym
    assert mask_value("counterparty", "dev-42", key) != first
    # no key: nothing to link, nothing to reverse
    assert mask_value("device_id", "dev-42", None) == REDACTED
    assert mask_value("device_id", "dev-42", b"") == REDACTED
