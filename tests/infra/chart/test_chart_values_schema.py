"""values.schema.json is the chart's public contract: it rejects unknown keys and wrong types,
and every key in values.yaml is documented."""

from __future__ import annotations

import re

import helm_python as helm
import pytest
import yaml
from chart_render import CHART_DIR, render_chart


@pytest.mark.parametrize(
    ("values", "named"),
    [
        ({"intervention": {"replica": 3}}, "replica"),  # misspelled `replicas`
        ({"streaming": {"kafka": {"partition": 6}}}, "partition"),
        ({"imagePullSecret": ["regcred"]}, "imagePullSecret"),
    ],
)
def test_misspelled_key_is_rejected_naming_the_key(values, named) -> None:
    with pytest.raises(helm.HelmValuesError, match=named):
        render_chart(values)


@pytest.mark.parametrize(
    ("values", "where"),
    [
        ({"intervention": {"replicas": "two"}}, "/intervention/replicas"),
        ({"streaming": {"kafka": {"partitions": 0}}}, "/streaming/kafka/partitions"),
        ({"batch": {"kind": "SparkApp"}}, "/batch/kind"),
        ({"image": {"tag": "latest"}}, "/image/tag"),
        # null deletes a default in Helm: dropping the limits is refused (secure default).
        ({"intervention": {"resources": {"limits": None}}}, "/intervention/resources"),
        ({"batch": {"input": "bucket/raw"}}, "/batch/input"),
    ],
)
def test_wrong_type_or_value_is_rejected_naming_the_path(values, where) -> None:
    with pytest.raises(helm.HelmValuesError, match=re.escape(where)):
        render_chart(values)


def test_defaults_satisfy_the_schema() -> None:
    with helm.Chart.load(CHART_DIR) as chart:
        chart.validate_schema(chart.values)
        assert chart.schema is not None
        assert chart.schema["additionalProperties"] is False


def test_every_value_is_documented_by_a_comment_above_it() -> None:
    # A key is documented by the comment line directly above it, or it sits inside a value
    # documented as a whole ("# -- ..." above an ancestor key: a passed-through object).
    lines = (CHART_DIR / "values.yaml").read_text().splitlines()
    undocumented = []
    for number, line in enumerate(lines):
        if not re.match(r"^\s*[A-Za-z][A-Za-z0-9]*:", line):
            continue
        if number and lines[number - 1].strip().startswith("#"):
            continue
        indent = len(line) - len(line.lstrip())
        documented_ancestor = False
        for above in range(number - 1, -1, -1):
            text = lines[above]
            depth = len(text) - len(text.lstrip())
            if not text.strip() or text.lstrip().startswith(("#", "-")) or depth >= indent:
                continue
            indent = depth
            comment = above - 1
            while comment >= 0 and lines[comment].strip().startswith("#"):
                if lines[comment].strip().startswith("# --"):
                    documented_ancestor = True
                comment -= 1
            if documented_ancestor:
                break
        if not documented_ancestor:
            undocumented.append(f"line {number + 1}: {line.strip()}")
    assert not undocumented, f"values.yaml keys without a comment: {undocumented}"


def test_every_schema_property_exists_in_values_yaml() -> None:
    # The schema and values.yaml describe the same keys: no schema-only phantom settings.
    values = yaml.safe_load((CHART_DIR / "values.yaml").read_text())
    with helm.Chart.load(CHART_DIR) as chart:
        schema = chart.schema
    assert schema is not None

    def walk(node: dict, value: object, path: str) -> None:
        # An empty default ({}) is an optional table set (e.g. intervention.config).
        if node.get("additionalProperties") is False and value != {}:
            assert isinstance(value, dict), path
            assert set(node["properties"]) == set(value), path
            for key, sub in node["properties"].items():
                walk(sub, value[key], f"{path}.{key}")

    walk(schema, values, "values")
