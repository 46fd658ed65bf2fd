"""The country location table the geo-velocity features read."""

from __future__ import annotations

import math
import re

import ibis
import pytest
from fraudwatch.contract.locations import (
    EARTH_RADIUS_KM,
    country_locations,
    great_circle_km,
    location,
)
from fraudwatch.generator.personas import ALL_COUNTRIES


def test_every_country_the_generator_emits_has_a_location():
    missing = [c for c in ALL_COUNTRIES if location(c) is None]
    assert missing == []


def test_codes_and_coordinates_are_valid():
    table = country_locations()
    assert len(table) > 150
    for code, (lat, lon) in table.items():
        assert re.fullmatch(r"[A-Z]{2}", code), code
        assert -90 <= lat <= 90 and -180 <= lon <= 180, code


def test_unknown_or_missing_country_has_no_location():
    assert location("ZZ") is None and location("") is None and location(None) is None
    assert location(" gb") == location("GB")


def test_great_circle_distances():
    assert great_circle_km(0, 0, 0, 90) == pytest.approx(math.pi / 2 * EARTH_RADIUS_KM)
    assert great_circle_km(10, 20, 10, 20) == 0.0
    # Country centres: Germany–France is short, the UK–Australia trip is half the planet.
    de_fr = great_circle_km(*location("DE"), *location("FR"))
    gb_au = great_circle_km(*location("GB"), *location("AU"))
    assert 500 < de_fr < 900 and 14_000 < gb_au < 17_000


def test_the_ibis_expression_agrees_with_the_python_one():
    from fraudwatch.features.transactions import _great_circle_km

    a, b = location("NG"), location("KZ")
    expr = _great_circle_km(
        ibis.literal(a[0]), ibis.literal(a[1]), ibis.literal(b[0]), ibis.literal(b[1])
    )
    assert ibis.duckdb.connect().execute(expr) == pytest.approx(great_circle_km(*a, *b))
