"""The chart passes the product only what it reads: a FRAUDWATCH_* variable that no string
literal of workloads/fraudwatch's code names (comments and docstrings do not count) is a
contract the product does not implement (0.2.0 set four such variables on the streaming
scorer, which therefore ran against its defaults)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import yaml
from chart_render import CHART_DIR, render_chart

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from product_contract import (
    env_names,
    env_names_in_code,
    product_env_names,
    product_topics,
    unread_fraudwatch_variables,
)


def test_the_product_scan_finds_what_the_stream_reads() -> None:
    names = product_env_names()
    assert {"FRAUDWATCH_KAFKA_BOOTSTRAP", "FRAUDWATCH_STREAM_CHECKPOINT"} <= names
    assert "FRAUDWATCH_KAFKA_BOOTSTRAP_SERVERS" not in names


def test_a_name_in_a_comment_or_docstring_is_not_read() -> None:
    source = (
        '"""Reads $FRAUDWATCH_IN_DOCSTRING."""\n'
        "import os\n"
        "# FRAUDWATCH_IN_COMMENT is not read any more\n"
        "FRAUDWATCH_IDENTIFIER = 1\n"
        "def home():\n"
        '    """FRAUDWATCH_IN_FUNCTION_DOCSTRING"""\n'
        '    return os.environ.get("FRAUDWATCH_READ"), f"{os.sep}FRAUDWATCH_IN_FSTRING"\n'
    )
    assert env_names_in_code(source) == {"FRAUDWATCH_READ", "FRAUDWATCH_IN_FSTRING"}


@pytest.mark.parametrize("values_set", ["default", "minimal", "production"])
def test_every_fraudwatch_variable_the_chart_sets_is_read_by_the_product(
    rendered, values_set
) -> None:
    objects = rendered[values_set]
    assert any(n.startswith("FRAUDWATCH_") for n in env_names(objects))
    assert unread_fraudwatch_variables(objects) == set()


def test_a_variable_the_product_does_not_read_is_caught() -> None:
    objects = render_chart(
        {"streaming": {"extraEnv": [{"name": "FRAUDWATCH_KAFKA_TOPICS", "value": "transactions"}]}}
    )
    assert unread_fraudwatch_variables(objects) == {"FRAUDWATCH_KAFKA_TOPICS"}


def test_default_topic_prefix_is_the_products() -> None:
    values = yaml.safe_load((CHART_DIR / "values.yaml").read_text())
    assert values["streaming"]["kafka"]["topicPrefix"] == product_topics().prefix
