"""Which model version the stream scores with: a fixed folder, or the registry's promoted
version, followed without a restart (the end-to-end stream is in tests/integration/streaming)."""

from __future__ import annotations

from pathlib import Path

import pytest
from fraudwatch.errors import UserError
from fraudwatch.generator.population import GeneratorConfig
from fraudwatch.generator.writer import generate
from fraudwatch.models.registry import ModelRegistry
from fraudwatch.scoring.pipeline import ScoreOptions, score
from fraudwatch.streaming.job import MicroBatchProcessor
from fraudwatch.streaming.stream_settings import StreamSettings


@pytest.fixture(scope="module")
def two_versions(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Two Isolation Forest versions fitted on two small generated data sets."""
    root = tmp_path_factory.mktemp("stream-models")
    folders = []
    for seed in (3, 4):
        generate(
            GeneratorConfig(users=60, transactions=300, seed=seed, days=7), root / f"raw{seed}"
        )
        score(root / f"raw{seed}", root / f"scored{seed}", ScoreOptions(models=["iforest"]))
        (folder,) = (root / f"scored{seed}" / "models").iterdir()
        folders.append(folder)
    return folders


def _settings(tmp_path: Path, **kw) -> StreamSettings:
    return StreamSettings(
        bootstrap_servers="127.0.0.1:9092",
        es_url="http://127.0.0.1:9200",
        checkpoint=tmp_path / "ckpt",
        **kw,
    )


def test_the_stream_follows_the_registrys_promoted_version(
    two_versions: list[Path], tmp_path: Path
) -> None:
    registry = ModelRegistry(tmp_path / "registry")
    first, second = (registry.add(folder) for folder in two_versions)
    registry.promote(first, "initial")
    processor = MicroBatchProcessor(_settings(tmp_path, models_dir=None, registry=registry.root))
    try:
        assert processor.current_version().version == first
        registry.promote(second, "weekly retrain")  # no restart
        assert processor.current_version().version == second
        registry.rollback("worse in production")
        assert processor.current_version().version == first
    finally:
        processor.close()


def test_a_fixed_models_dir_is_never_swapped(two_versions: list[Path], tmp_path: Path) -> None:
    processor = MicroBatchProcessor(_settings(tmp_path, models_dir=two_versions[0]))
    try:
        assert processor.current_version().version == two_versions[0].name
    finally:
        processor.close()


def test_models_dir_and_registry_are_exclusive(two_versions: list[Path], tmp_path: Path) -> None:
    with pytest.raises(UserError, match=r"exactly one of --models-dir .* and --registry"):
        _settings(tmp_path, models_dir=two_versions[0], registry=tmp_path / "registry")
    with pytest.raises(UserError, match="exactly one of"):
        _settings(tmp_path, models_dir=None)


def test_a_registry_with_nothing_promoted_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="no model version is promoted"):
        MicroBatchProcessor(_settings(tmp_path, models_dir=None, registry=tmp_path / "empty"))
