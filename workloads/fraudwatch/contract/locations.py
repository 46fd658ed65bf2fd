"""Where countries are: the approximate centre (latitude, longitude) of each ISO 3166-1
alpha-2 country, shipped as package data (`country-locations.json`), and the great-circle
distance between two points.

The table is country-level: it tells Lagos from Almaty, not Lyon from Paris. Geo-velocity
features built on it (docs/features.md) are therefore meaningful for far-apart countries and
understate speed between neighbours. A country missing from the table has no location: the
features that need it are null, never an error.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from functools import cache
from importlib import resources
from types import MappingProxyType

TABLE_FILE = "country-locations.json"
EARTH_RADIUS_KM = 6371.0


@cache
def country_locations() -> Mapping[str, tuple[float, float]]:
    """ISO alpha-2 code → (latitude, longitude) in degrees."""
    text = resources.files(__package__).joinpath(TABLE_FILE).read_text(encoding="utf-8")
    table = json.loads(text)["centroids"]
    return MappingProxyType({code: (float(lat), float(lon)) for code, (lat, lon) in table.items()})


def location(country: str | None) -> tuple[float, float] | None:
    """(latitude, longitude) of a country, or None when it is unknown."""
    if not country:
        return None
    return country_locations().get(country.strip().upper())


def great_circle_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Haversine distance in kilometres between two points given in degrees."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(h)))
