"""The pipelines' configuration file: defaults, overrides and readable refusals."""

from __future__ import annotations

import json

import pytest
from fraudwatch.errors import UserError
from fraudwatch.pipelines.config import load_config, parse_config


def test_defaults_are_local_with_publishing_off(monkeypatch, tmp_path):
    monkeypatch.delenv("FRAUDWATCH_PIPELINE_CONFIG", raising=False)
    monkeypatch.delenv("FRAUDWATCH_PIPELINE_CONFIG_JSON", raising=False)
    monkeypatch.setenv("FRAUDWATCH_HOME", str(tmp_path))
    config = load_config()
    assert config.mode == "local"
    assert not config.publish.elasticsearch and not config.publish.tableau
    assert config.raw_dir("2026-03-02") == tmp_path / "pipeline" / "raw" / "2026-03-02"


def test_file_overrides_nested_keys_and_round_trips_through_json(tmp_path):
    path = tmp_path / "pipeline.json"
    path.write_text(json.dumps({"mode": "kubernetes", "kubernetes": {"image": "fw:1.2.3"}}))
    config = load_config(path)
    assert config.kubernetes.image == "fw:1.2.3"
    assert config.kubernetes.namespace == "fraudwatch"  # untouched default
    assert parse_config(json.loads(config.as_json())) == config


def test_unknown_keys_and_modes_are_refused_with_the_known_ones():
    with pytest.raises(UserError, match=r"unknown key\(s\) \['imgae'\] in kubernetes"):
        parse_config({"kubernetes": {"imgae": "x"}})
    with pytest.raises(UserError, match="pipeline mode 'cloud' is unknown"):
        parse_config({"mode": "cloud"})


def test_missing_config_file_names_the_variable(tmp_path, monkeypatch):
    monkeypatch.delenv("FRAUDWATCH_PIPELINE_CONFIG_JSON", raising=False)
    monkeypatch.setenv("FRAUDWATCH_PIPELINE_CONFIG", str(tmp_path / "nope.yaml"))
    with pytest.raises(UserError, match=r"does not exist; fix \$FRAUDWATCH_PIPELINE_CONFIG"):
        load_config()
