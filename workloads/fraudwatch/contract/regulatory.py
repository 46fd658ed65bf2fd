"""Regulatory constants: the amount above which a transaction must be reported, per currency.

Structuring (many transfers just under the reporting threshold) is defined against it, so both
the generator (which simulates structuring) and the features (`near_reporting_threshold`) read
it from here, never from each other.

Defaults (`DEFAULT_REPORTING_THRESHOLDS`): 10,000 in every currency the generator emits, and
10,000 for any other currency (the `*` entry). 10,000 is the cash-reporting threshold of the
US (currency transaction report, USD), the EU (cash declarations, EUR), Canada (large cash
transaction report, CAD) and Australia (threshold transaction report, AUD); for the other
currencies it is the generator's nominal figure (its amounts are not scaled by currency), and a
deployment sets its own.

Configuration, like fraudwatch's home folder (`fraudwatch.locations.home`), comes from the environment:

    FRAUDWATCH_REPORTING_THRESHOLDS="USD=10000,EUR=10000,JPY=1000000,*=10000"

Each entry overrides the default of one currency (ISO 4217 code, upper case) or, with `*`, of
every currency not listed. A malformed value raises `UserError` naming the variable and the fix.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping
from types import MappingProxyType

from fraudwatch.errors import UserError

ENV_REPORTING_THRESHOLDS = "FRAUDWATCH_REPORTING_THRESHOLDS"
ANY_CURRENCY = "*"
DEFAULT_REPORTING_THRESHOLD = 10_000.0
DEFAULT_REPORTING_THRESHOLDS: Mapping[str, float] = MappingProxyType(
    {
        **dict.fromkeys(
            (
                "USD",
                "EUR",
                "GBP",
                "CAD",
                "AUD",
                "CHF",
                "SEK",
                "PLN",
                "JPY",
                "SGD",
                "BRL",
            ),
            DEFAULT_REPORTING_THRESHOLD,
        ),
        ANY_CURRENCY: DEFAULT_REPORTING_THRESHOLD,
    }
)
#: A transfer is "near" the threshold from this share of it up to just below it.
NEAR_THRESHOLD_SHARE = 0.9

_CURRENCY = re.compile(r"^[A-Z]{3}$")
_EXAMPLE = f"{ENV_REPORTING_THRESHOLDS}='USD=10000,EUR=10000,*=10000'"


def reporting_thresholds(environ: Mapping[str, str] | None = None) -> dict[str, float]:
    """The reporting threshold per currency: the defaults, overridden by the environment.
    The `*` entry applies to any currency not listed."""
    env = os.environ if environ is None else environ
    out = dict(DEFAULT_REPORTING_THRESHOLDS)
    text = (env.get(ENV_REPORTING_THRESHOLDS) or "").strip()
    if not text:
        return out
    for item in text.split(","):
        item = item.strip()
        if not item:
            continue
        currency, sep, amount = item.partition("=")
        currency, amount = currency.strip(), amount.strip()
        if not sep:
            raise UserError(
                f"{ENV_REPORTING_THRESHOLDS}: {item!r} is not CURRENCY=AMOUNT; set e.g. {_EXAMPLE}"
            )
        if currency != ANY_CURRENCY and not _CURRENCY.match(currency):
            raise UserError(
                f"{ENV_REPORTING_THRESHOLDS}: {currency!r} is not an ISO 4217 currency code "
                f"(three upper-case letters) or {ANY_CURRENCY!r}; set e.g. {_EXAMPLE}"
            )
        try:
            value = float(amount)
        except ValueError:
            value = math.nan
        if not math.isfinite(value) or value <= 0:
            raise UserError(
                f"{ENV_REPORTING_THRESHOLDS}: the threshold of {currency} must be a positive "
                f"number, not {amount!r}; set e.g. {_EXAMPLE}"
            )
        out[currency] = value
    return out


def reporting_threshold(currency: str, thresholds: Mapping[str, float] | None = None) -> float:
    """The threshold of one currency (the `*` entry when it has none of its own)."""
    table = reporting_thresholds() if thresholds is None else thresholds
    return float(table.get(currency, table.get(ANY_CURRENCY, DEFAULT_REPORTING_THRESHOLD)))
