"""The generator: exact sizes, personas, scenarios with ground truth, determinism."""

from __future__ import annotations

import dataclasses
import json

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pytest
from fraudwatch.errors import UserError
from fraudwatch.generator.personas import PERSONA_NAMES
from fraudwatch.generator.population import GeneratorConfig
from fraudwatch.generator.scenarios import SCENARIO_NAMES
from fraudwatch.generator.writer import generate

from .conftest import SMALL

TABLE_KEYS = {
    "users": "user_id",
    "transactions": "tx_id",
    "logins": "event_id",
    "api_calls": "event_id",
}


def read(root, table: str) -> pa.Table:
    """A table's rows in a canonical order, categories decoded, so that two data sets compare."""
    t = ds.dataset(root / table, format="parquet", partitioning=None).to_table()
    t = t.sort_by(TABLE_KEYS[table])
    return pa.table(
        {
            n: (c.cast(pa.string()) if pa.types.is_dictionary(c.type) else c)
            for n, c in zip(t.column_names, t.columns, strict=True)
        }
    )


def sql(query: str, **tables: pa.Table) -> list[tuple]:
    """Run DuckDB SQL over the given Arrow tables (registered under their keyword names)."""
    con = duckdb.connect()
    for name, table in tables.items():
        con.register(name, table)
    return con.sql(query).fetchall()


def test_sizes_personas_and_schema(raw_dir):
    users, tx = read(raw_dir, "users"), read(raw_dir, "transactions")
    assert users.num_rows == SMALL.users
    assert tx.num_rows == SMALL.transactions
    counts = dict(sql("SELECT persona, count(*) FROM users GROUP BY 1", users=users))
    assert counts == dict.fromkeys(PERSONA_NAMES, SMALL.users // 4)
    expected = {
        "tx_id",
        "user_id",
        "ts",
        "amount",
        "currency",
        "tx_type",
        "channel",
        "ip",
        "device_id",
        "country",
        "counterparty",
        "status",
        "label",
        "scenario",
    }
    assert expected <= set(tx.column_names)
    assert pc.all(pc.equal(tx["tx_id"], pa.array(range(1, SMALL.transactions + 1)))).as_py()
    assert str(tx.schema.field("ts").type) == "timestamp[us, tz=UTC]"


def test_partitioned_by_date_within_the_period(raw_dir):
    days = sorted(p.name for p in (raw_dir / "transactions").iterdir())
    assert days[0] == "date=2026-01-01" and len(days) == SMALL.days
    tx = read(raw_dir, "transactions")
    lo, hi = sql("SELECT min(ts), max(ts) FROM tx", tx=tx)[0]
    assert lo.isoformat() >= "2026-01-01" and hi.isoformat() < "2026-01-15"


def test_loose_users_transact_more_and_aggressive_users_spend_more(raw_dir):
    users, tx = read(raw_dir, "users"), read(raw_dir, "transactions")
    rows = sql(
        "SELECT u.persona, count(*) / count(DISTINCT t.user_id) AS per_user, median(t.amount) AS amount, "
        "avg((t.tx_type IN ('withdrawal', 'transfer'))::INT) AS risky "
        "FROM tx t JOIN users u USING (user_id) WHERE t.label = 0 GROUP BY 1",
        tx=tx,
        users=users,
    )
    stats = {p: (n, a, r) for p, n, a, r in rows}
    assert stats["loose-passive"][0] > 2 * stats["tight-passive"][0]
    assert stats["loose-aggressive"][0] > 2 * stats["tight-aggressive"][0]
    assert stats["tight-aggressive"][1] > 3 * stats["tight-passive"][1]
    assert stats["loose-aggressive"][2] > 1.5 * stats["loose-passive"][2]


def test_every_scenario_is_injected_with_consistent_ground_truth(tmp_path):
    config = dataclasses.replace(SMALL, users=8_000, transactions=80_000, fraud_rate=0.02)
    generate(config, tmp_path / "raw", workers=1)
    users, tx = read(tmp_path / "raw", "users"), read(tmp_path / "raw", "transactions")
    assert set(pc.unique(tx["scenario"].drop_null()).to_pylist()) == set(SCENARIO_NAMES)
    # A transaction is labelled exactly when it belongs to a scenario, and its user is a victim
    # of that same scenario.
    mismatched = sql(
        "SELECT count(*) FROM tx t JOIN users u USING (user_id) "
        "WHERE (t.label = 1) <> (t.scenario IS NOT NULL) OR (t.label = 1 AND (u.label <> 1 OR u.scenario <> t.scenario))",
        tx=tx,
        users=users,
    )[0][0]
    assert mismatched == 0
    share = pc.mean(tx["label"]).as_py()
    assert 0.01 < share < 0.04  # fraud_rate 0.02, scenario sizes vary
    manifest = json.loads((tmp_path / "raw" / "manifest.json").read_text())
    assert manifest["counts"]["transactions"] == 80_000


def test_takeover_logins_precede_the_takeover(tmp_path):
    config = dataclasses.replace(SMALL, fraud_rate=0.02, scenario_weights={"account_takeover": 1.0})
    generate(config, tmp_path / "raw", workers=1)
    logins, tx = read(tmp_path / "raw", "logins"), read(tmp_path / "raw", "transactions")
    late = sql(
        "SELECT count(*) FROM (SELECT user_id, max(ts) AS last_attack FROM logins WHERE label = 1 GROUP BY 1) l "
        "JOIN (SELECT user_id, min(ts) AS first_fraud FROM tx WHERE label = 1 GROUP BY 1) f USING (user_id) "
        "WHERE l.last_attack > f.first_fraud",
        logins=logins,
        tx=tx,
    )[0][0]
    assert (
        sql("SELECT count(*) FROM logins WHERE label = 1 AND NOT success", logins=logins)[0][0] > 0
    )
    assert late == 0


def test_same_seed_same_data_whatever_the_workers_or_chunks(tmp_path, raw_dir):
    other = tmp_path / "raw"
    generate(SMALL, other, workers=1, chunk_users=333)
    for table in TABLE_KEYS:
        assert read(other, table).equals(read(raw_dir, table)), f"{table} differs"
    a = json.loads((raw_dir / "manifest.json").read_text())["fingerprint"]
    b = json.loads((other / "manifest.json").read_text())["fingerprint"]
    assert a == b


def test_another_seed_gives_other_data(tmp_path, raw_dir):
    generate(dataclasses.replace(SMALL, seed=8), tmp_path / "raw", workers=2)
    assert not read(tmp_path / "raw", "transactions").equals(read(raw_dir, "transactions"))


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        ({"users": 2}, "--users"),
        ({"fraud_rate": 0.9}, "--fraud-rate"),
        ({"days": 0}, "--days"),
        ({"transactions": 10}, "--transactions"),
    ],
)
def test_bad_config_names_the_option(change, needle):
    with pytest.raises(UserError, match=needle):
        GeneratorConfig(**change)


DEMO = GeneratorConfig(users=20_000, transactions=200_000)  # `fraudwatch demo`'s scale


def test_every_scenario_has_victims_at_demo_scale():
    import numpy as np
    from fraudwatch.generator.population import MIN_VICTIMS_PER_SCENARIO, build_population

    population = build_population(DEMO)
    victims = np.bincount(population.scenario[population.scenario >= 0], minlength=7)
    assert dict(zip(SCENARIO_NAMES, victims.tolist(), strict=True)) == dict.fromkeys(
        SCENARIO_NAMES, MIN_VICTIMS_PER_SCENARIO
    )
    drift = population.scenario == SCENARIO_NAMES.index("persona_drift")
    assert all(PERSONA_NAMES[p].endswith("passive") for p in population.persona[drift])
    # The floor costs a little more fraud than asked for, never a lot.
    share = population.fraud_tx.sum() / DEMO.transactions
    assert DEMO.fraud_rate <= share < 2 * DEMO.fraud_rate


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        # Enough fraud for the requested rate: victims follow it (77 at ~13 transactions each).
        (GeneratorConfig(users=100_000, transactions=1_000_000), [11] * 7),
        # Too small for a floor without swamping the data: no scenario is forced in.
        (GeneratorConfig(users=50, transactions=1_500), [0] * 7),
        # A zero weight switches a scenario off, floor included.
        (
            GeneratorConfig(
                users=20_000, transactions=200_000, scenario_weights={"structuring": 1.0}
            ),
            [0, 0, 24, 0, 0, 0, 0],  # 200 transactions at 8.5 each
        ),
        (GeneratorConfig(users=20_000, transactions=200_000, fraud_rate=0.0), [0] * 7),
    ],
)
def test_victims_per_scenario(config, expected):
    from fraudwatch.generator.population import victims_per_scenario

    assert victims_per_scenario(config).tolist() == expected


def test_victims_are_deterministic_per_seed():
    import numpy as np
    from fraudwatch.generator.population import build_population

    a, b = build_population(DEMO), build_population(DEMO)
    assert np.array_equal(a.scenario, b.scenario) and np.array_equal(a.fraud_tx, b.fraud_tx)
    other = build_population(dataclasses.replace(DEMO, seed=DEMO.seed + 1))
    assert not np.array_equal(a.scenario, other.scenario)


def test_normal_users_travel_by_the_day(raw_dir):
    """A normal user's transactions on one UTC day are all made from one country: ordinary
    travel never looks like the impossible_travel scenario."""
    tx = read(raw_dir, "transactions")
    hops = sql(
        "SELECT count(*) FROM (SELECT user_id, ts::DATE AS day FROM tx WHERE label = 0 "
        "GROUP BY 1, 2 HAVING count(DISTINCT country) > 1)",
        tx=tx,
    )[0][0]
    travelled = sql(
        "SELECT count(*) FROM tx t JOIN users u USING (user_id) "
        "WHERE t.label = 0 AND t.country <> u.home_country",
        tx=tx,
        users=read(raw_dir, "users"),
    )[0][0]
    assert travelled > 0 and hops == 0


def test_structuring_follows_the_configured_reporting_threshold(tmp_path, monkeypatch):
    from fraudwatch.contract.regulatory import ENV_REPORTING_THRESHOLDS

    monkeypatch.setenv(ENV_REPORTING_THRESHOLDS, "GBP=3000")
    config = dataclasses.replace(SMALL, fraud_rate=0.02, scenario_weights={"structuring": 1.0})
    generate(config, tmp_path / "raw", workers=1)
    rows = sql(
        "SELECT currency, min(amount), max(amount) FROM tx WHERE label = 1 GROUP BY 1",
        tx=read(tmp_path / "raw", "transactions"),
    )
    limits = {currency: (low, high) for currency, low, high in rows}
    assert "GBP" in limits and len(limits) > 1
    for currency, (low, high) in limits.items():
        threshold = 3000 if currency == "GBP" else 10_000  # the others keep their default
        assert 0.9 * threshold <= low and high < threshold, currency
    manifest = json.loads((tmp_path / "raw" / "manifest.json").read_text())
    assert manifest["reporting_thresholds"]["GBP"] == 3000
    # The evaluation lists the scenarios the data was generated with (victims or not).
    assert manifest["scenarios"] == ["structuring"]
