"""The generator's fast paths give exactly what the plain formulations give: keyed draws shared
per user, the sort that replaces np.lexsort, the IP text built in numpy, the date order."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from fraudwatch.generator import events
from fraudwatch.generator import randomness as rnd
from fraudwatch.generator.population import GeneratorConfig, build_population


def test_rows_draws_equal_the_keyed_hash():
    user_id = np.array([7, 42, 1_000_001, 3])
    user = np.array([0, 0, 1, 2, 2, 2, 3, 1])
    key = np.array([0, 1, 0, 0, 1, 2, 0, 5])
    rows = rnd.Rows(11, user_id, user, key)
    assert np.array_equal(rows.hash64("q"), rnd.hash64(11, "q", user_id[user], key))
    assert np.array_equal(rows.normal("n"), rnd.normal(11, "n", user_id[user], key))
    high = np.array([1, 2, 3, 4, 5, 6, 7, 8])
    assert np.array_equal(
        rows.integers("i", 0, high), rnd.integers(11, "i", 0, high, user_id[user], key)
    )
    cumulative = np.cumsum(np.full((len(user), 4), 0.25), axis=1)
    assert np.array_equal(
        rows.choice("c", cumulative), rnd.choice(11, "c", cumulative, user_id[user], key)
    )
    acc = np.arange(8, dtype=np.uint64)
    expected = rnd.hash64(0, "f", acc, key)
    rnd.fold(acc, 0, "f", key)
    assert np.array_equal(acc, expected)


def test_stable_argsort_keeps_ties_in_their_order():
    values = np.random.default_rng(0).integers(0, 50, 10_000).astype(np.float64)  # many ties
    assert np.array_equal(events._stable_argsort(values), np.argsort(values, kind="stable"))


def test_ip_text_equals_arrow_formatting():
    ip = np.random.default_rng(1).integers(0, 2**32, 5_000)
    ip[:4] = [0, 2**32 - 1, 10 << 24 | 100 << 8, 255 << 16 | 9]
    parts = [pa.array((ip >> s) & 0xFF).cast(pa.string()) for s in (24, 16, 8, 0)]
    assert events._ip_strings(ip).equals(pc.binary_join_element_wise(*parts, "."))


def test_date_order_is_a_stable_date_sort_of_the_user_order():
    pop = build_population(GeneratorConfig(users=400, transactions=6_000, seed=5, days=5))
    for build in (events.transactions, events.logins, events.api_calls):
        by_user = build(pop, 100, 300)
        by_date = build(pop, 100, 300, by_day=True)
        day = pc.cast(by_user["ts"], pa.int64()).to_numpy() // events.US_PER_DAY
        assert by_date.equals(by_user.take(np.argsort(day, kind="stable")))
