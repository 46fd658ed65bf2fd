"""The model registry: promotion is a pointer swap that keeps the replaced version for rollback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fraudwatch.errors import UserError
from fraudwatch.models.registry import ModelRegistry


def _saved_version(root: Path, version: str) -> Path:
    """A folder as ModelVersion.save writes it (the registry reads only the manifest)."""
    folder = root / "out" / version
    (folder / "users").mkdir(parents=True)
    (folder / "users" / "iforest.joblib").write_bytes(b"fitted model bytes")
    (folder / "manifest.json").write_text(json.dumps({"version": version, "levels": {}}))
    return folder


def test_first_promotion_has_no_previous(tmp_path):
    registry = ModelRegistry(tmp_path / "models")
    assert registry.promoted() is None
    version = registry.add(_saved_version(tmp_path, "v1"))
    registry.promote(version, "first model")
    assert registry.promoted() == "v1"
    assert registry.previous() is None
    assert (registry.promoted_path() / "users" / "iforest.joblib").read_bytes() == (
        b"fitted model bytes"
    )


def test_promotion_keeps_the_replaced_version_and_rollback_restores_it(tmp_path):
    registry = ModelRegistry(tmp_path / "models")
    registry.promote(registry.add(_saved_version(tmp_path, "v1")), "first")
    registry.promote(registry.add(_saved_version(tmp_path, "v2")), "better", {"auc": 0.9})
    assert (registry.promoted(), registry.previous()) == ("v2", "v1")

    assert registry.rollback("v2 misbehaves") == "v1"
    assert (registry.promoted(), registry.previous()) == ("v1", "v2")
    assert registry.versions() == ["v1", "v2"]
    actions = [(e.action, e.version, e.previous) for e in registry.history()]
    assert actions == [
        ("promote", "v1", None),
        ("promote", "v2", "v1"),
        ("rollback", "v1", "v2"),
    ]
    assert registry.history()[1].metrics == {"auc": 0.9}


def test_refusal_is_recorded_and_leaves_the_pointers_alone(tmp_path):
    registry = ModelRegistry(tmp_path / "models")
    registry.promote(registry.add(_saved_version(tmp_path, "v1")), "first")
    registry.refuse("v2", "pr_auc worse by 0.2")
    assert registry.promoted() == "v1"
    assert registry.history()[-1].action == "refuse"
    assert "worse" in registry.history()[-1].reason


def test_adding_the_same_version_twice_is_harmless(tmp_path):
    registry = ModelRegistry(tmp_path / "models")
    source = _saved_version(tmp_path, "v1")
    assert registry.add(source) == registry.add(source) == "v1"
    assert registry.versions() == ["v1"]
    assert not [p for p in registry.versions_dir.iterdir() if p.name.startswith(".")]


def test_unknown_versions_and_empty_rollbacks_are_clear_errors(tmp_path):
    registry = ModelRegistry(tmp_path / "models")
    with pytest.raises(UserError, match="no model version is promoted"):
        registry.promoted_path()
    with pytest.raises(UserError, match="'v9' is not in the registry"):
        registry.promote("v9", "typo")
    registry.promote(registry.add(_saved_version(tmp_path, "v1")), "first")
    with pytest.raises(UserError, match="nothing to roll back to"):
        registry.rollback()
    with pytest.raises(UserError, match=r"has no manifest\.json"):
        registry.add(tmp_path)
