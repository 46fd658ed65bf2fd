"""docs/intervention.md states the permission matrix the code enforces."""

from __future__ import annotations

from pathlib import Path

from fraudwatch.intervention.auth import PERMISSIONS, ROLES

DOC = Path(__file__).resolve().parents[3] / "docs" / "intervention.md"


def test_the_documented_permission_matrix_matches_the_code() -> None:
    text = DOC.read_text()
    table = text.split("<!-- permission-matrix -->")[1].split("<!-- /permission-matrix -->")[0]
    rows = [line.strip("| ").split(" | ") for line in table.strip().splitlines()[2:]]
    header = table.strip().splitlines()[0].strip("| ").split(" | ")
    assert header[1:] == list(ROLES)
    documented = {
        row[0]: {r for r, cell in zip(ROLES, row[1:], strict=True) if cell == "yes"} for row in rows
    }
    assert documented == {name: set(roles) for name, roles in PERMISSIONS.items()}
