"""Regulatory constants: documented defaults, overridden by configuration, bad values named."""

from __future__ import annotations

import pytest
from fraudwatch.contract.regulatory import (
    DEFAULT_REPORTING_THRESHOLD,
    ENV_REPORTING_THRESHOLDS,
    reporting_threshold,
    reporting_thresholds,
)
from fraudwatch.errors import UserError
from fraudwatch.generator.personas import COUNTRIES


def test_every_generated_currency_has_a_default_threshold():
    defaults = reporting_thresholds({})
    for _, _, currency in COUNTRIES:
        assert defaults[currency] == DEFAULT_REPORTING_THRESHOLD
    assert reporting_threshold("XYZ", defaults) == DEFAULT_REPORTING_THRESHOLD


def test_configuration_overrides_one_currency_or_every_other():
    table = reporting_thresholds({ENV_REPORTING_THRESHOLDS: " JPY=1000000 , *=5000,"})
    assert table["JPY"] == 1_000_000.0
    assert table["USD"] == DEFAULT_REPORTING_THRESHOLD  # listed defaults stay
    assert reporting_threshold("NOK", table) == 5_000.0


def test_the_environment_is_read_when_no_mapping_is_given(monkeypatch):
    monkeypatch.setenv(ENV_REPORTING_THRESHOLDS, "EUR=15000")
    assert reporting_threshold("EUR") == 15_000.0


@pytest.mark.parametrize(
    ("value", "needle"),
    [
        ("EUR", "CURRENCY=AMOUNT"),
        ("eur=10000", "ISO 4217"),
        ("EUR=ten", "positive number"),
        ("EUR=-5", "positive number"),
        ("EUR=nan", "positive number"),
    ],
)
def test_a_bad_value_names_the_key_and_the_fix(value, needle):
    with pytest.raises(UserError, match=needle) as error:
        reporting_thresholds({ENV_REPORTING_THRESHOLDS: value})
    assert ENV_REPORTING_THRESHOLDS in str(error.value)
    assert "set e.g." in str(error.value)
