"""Bad input: one line naming the problem and the fix, exit status 2, nothing half-written."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from .conftest import run_cli


def _assert_clean_failure(result, *needles):
    assert result.returncode == 2, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr
    message = result.stderr.strip().splitlines()[-1]
    for needle in needles:
        assert needle in result.stderr, (needle, result.stderr)
    assert message.startswith("error:"), message


def _no_leftovers(folder):
    return not [p for p in folder.iterdir() if ".partial-" in p.name]


def test_unknown_model(raw_dir, tmp_path):
    result = run_cli(
        "score",
        "--input",
        str(raw_dir),
        "--out",
        str(tmp_path / "o"),
        "--models",
        "iforest,xgboost",
    )
    _assert_clean_failure(result, "xgboost", "iforest,copod,autoencoder,lstm")
    assert not (tmp_path / "o").exists()


def test_unknown_engine(raw_dir, tmp_path):
    result = run_cli(
        "score", "--input", str(raw_dir), "--out", str(tmp_path / "o"), "--engine", "pandas"
    )
    _assert_clean_failure(result, "pandas", "duckdb, spark")


def test_missing_column(tmp_path):
    (tmp_path / "raw" / "transactions").mkdir(parents=True)
    pq.write_table(
        pa.table({"tx_id": [1], "user_id": [1]}),
        tmp_path / "raw" / "transactions" / "part-0.parquet",
    )
    result = run_cli("score", "--input", str(tmp_path / "raw"), "--out", str(tmp_path / "o"))
    _assert_clean_failure(result, "lacks column", "ts")
    assert not (tmp_path / "o").exists() and _no_leftovers(tmp_path)


def test_mistyped_column(raw_dir, tmp_path):
    table = pq.read_table(next((raw_dir / "transactions").rglob("*.parquet")))
    table = table.set_column(
        table.schema.get_field_index("amount"), "amount", table["amount"].cast(pa.string())
    )
    (tmp_path / "raw" / "transactions").mkdir(parents=True)
    pq.write_table(table, tmp_path / "raw" / "transactions" / "part-0.parquet")
    result = run_cli("score", "--input", str(tmp_path / "raw"), "--out", str(tmp_path / "o"))
    _assert_clean_failure(result, "amount", "expected numeric")


def test_empty_input(raw_dir, tmp_path):
    table = pq.read_table(next((raw_dir / "transactions").rglob("*.parquet"))).slice(0, 0)
    (tmp_path / "raw" / "transactions").mkdir(parents=True)
    pq.write_table(table, tmp_path / "raw" / "transactions" / "part-0.parquet")
    result = run_cli("score", "--input", str(tmp_path / "raw"), "--out", str(tmp_path / "o"))
    _assert_clean_failure(result, "no rows")
    assert not (tmp_path / "o").exists()


def test_missing_input_directory(tmp_path):
    result = run_cli("score", "--input", str(tmp_path / "nope"), "--out", str(tmp_path / "o"))
    _assert_clean_failure(result, "does not exist", "fraudwatch generate")


@pytest.mark.parametrize("command", ["generate", "report"])
def test_output_that_cannot_be_written(command, raw_dir, scored_dir, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    if command == "generate":
        result = run_cli(
            "generate", "--out", str(blocker / "raw"), "--users", "40", "--transactions", "400"
        )
    else:
        result = run_cli("report", "--scored", str(scored_dir), "--out", str(blocker / "r.html"))
    _assert_clean_failure(result, "choose another --out")


def test_existing_output_is_not_overwritten_without_asking(raw_dir, tmp_path):
    out = tmp_path / "raw"
    out.mkdir()
    (out / "keep.txt").write_text("precious")
    result = run_cli("generate", "--out", str(out), "--users", "40", "--transactions", "400")
    _assert_clean_failure(result, "--overwrite")
    assert (out / "keep.txt").read_text() == "precious"


def test_interrupted_generation_leaves_nothing(tmp_path, monkeypatch):
    from fraudwatch.generator import writer
    from fraudwatch.generator.population import GeneratorConfig

    def explode(job):
        raise RuntimeError("disk full")

    monkeypatch.setattr(writer, "_write_chunk", explode)
    with pytest.raises(RuntimeError):
        writer.generate(GeneratorConfig(users=40, transactions=400), tmp_path / "raw")
    assert list(tmp_path.iterdir()) == []


def test_bad_date_and_bad_evaluate_label(tmp_path):
    _assert_clean_failure(
        run_cli("generate", "--out", str(tmp_path / "r"), "--start", "01/02/2026"), "YYYY-MM-DD"
    )
    path = tmp_path / "t.csv"
    path.write_text("a,b,label\n1,2,0\n3,4,7\n")
    _assert_clean_failure(
        run_cli("evaluate", "--input", str(path), "--label-column", "label"), "only 0 and 1"
    )
    _assert_clean_failure(
        run_cli("evaluate", "--input", str(path), "--label-column", "y"), "'y' is not in"
    )
    _assert_clean_failure(
        run_cli("evaluate", "--input", str(path), "--models", "lstm"), "sequences"
    )
