"""`helm lint --strict` passes with every ci/ values file."""

from __future__ import annotations

import helm_python as helm
import pytest
from chart_render import CHART_DIR, KUBERNETES_VERSION, values_file


@pytest.mark.parametrize("values_set", ["default", "minimal", "production"])
def test_chart_lints_clean_in_strict_mode(values_set: str) -> None:
    report = helm.lint(
        CHART_DIR,
        values_file(values_set),
        strict=True,
        namespace="fraudwatch",
        kube_version=f"v{KUBERNETES_VERSION}",
    )
    # Severity 2 = warning, 3 = error; strict mode makes warnings fatal too. Info (1), such as
    # "icon is recommended", does not fail `helm lint --strict` either.
    problems = [m for m in report["messages"] if m["severity"] >= 2]
    assert report["total_charts_linted"] == 1
    assert not problems and not report["errors"], (problems, report["errors"])
