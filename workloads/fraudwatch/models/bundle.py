"""A fitted model version: scaler + models + reference scores for one level (users or
transactions), saved as versioned artefacts with a manifest."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from fraudwatch import __version__
from fraudwatch.errors import UserError
from fraudwatch.models import MODEL_NAMES
from fraudwatch.models.autoencoder import AutoencoderModel, AutoencoderParams
from fraudwatch.models.ensemble import combine, percentile, reference_quantiles
from fraudwatch.models.iforest import IForestModel, IForestParams
from fraudwatch.models.lstm import LSTMModel, LSTMParams
from fraudwatch.models.scaling import FeatureScaler


def check_models(names: list[str]) -> list[str]:
    unknown = [n for n in names if n not in MODEL_NAMES]
    if unknown or not names:
        raise UserError(
            f"unknown model(s) {', '.join(unknown) or '(none given)'}; "
            f"choose from: {','.join(MODEL_NAMES)}"
        )
    return list(dict.fromkeys(names))


@dataclass
class ModelSettings:
    """Parameters of every model (documented defaults in each model's Params class)."""

    iforest: IForestParams = field(default_factory=IForestParams)
    autoencoder: AutoencoderParams = field(default_factory=AutoencoderParams)
    lstm: LSTMParams = field(default_factory=LSTMParams)


@dataclass
class LevelModels:
    """Scaler + fitted models for one level. `x` is the raw feature matrix."""

    level: str
    features: list[str]
    scaler: FeatureScaler
    models: dict = field(default_factory=dict)
    reference: dict[str, list[float]] = field(default_factory=dict)

    @classmethod
    def fit(
        cls,
        level: str,
        features: list[str],
        x: np.ndarray,
        names: list[str],
        settings: ModelSettings,
        user_ids: np.ndarray | None = None,
    ) -> LevelModels:
        if len(x) < 2:
            raise UserError(
                f"need at least 2 {level} to fit models, got {len(x)}; generate more data"
            )
        scaler = FeatureScaler.fit(features, x)
        z = scaler.transform(x)
        fitted = cls(level, list(features), scaler)
        for name in names:
            if name == "iforest":
                fitted.models[name] = IForestModel(settings.iforest).fit(scaler.impute(x))
            elif name == "autoencoder":
                fitted.models[name] = AutoencoderModel(settings.autoencoder).fit(z)
            elif name == "lstm" and user_ids is not None:
                fitted.models[name] = LSTMModel(settings.lstm).fit(z, user_ids)
        raw = fitted.raw_scores(x, z, user_ids)
        fitted.reference = {name: reference_quantiles(s) for name, s in raw.items()}
        return fitted

    def raw_scores(self, x: np.ndarray, z: np.ndarray, user_ids: np.ndarray | None = None):
        """Each model's raw score: trees read imputed raw features, networks scaled ones."""
        out = {}
        for name, model in self.models.items():
            if name == "iforest":
                out[name] = model.score(self.scaler.impute(x))
            elif name == "lstm":
                out[name] = model.score(z, user_ids)
            else:
                out[name] = model.score(z)
        return out

    def score(self, x: np.ndarray, user_ids: np.ndarray | None = None):
        """(scaled features, {model: percentile}, ensemble) for a raw feature matrix."""
        z = self.scaler.transform(x)
        raw = self.raw_scores(x, z, user_ids)
        pct = {name: percentile(s, self.reference[name]) for name, s in raw.items()}
        return z, pct, combine(pct)

    def save(self, folder: Path) -> dict:
        folder.mkdir(parents=True, exist_ok=True)
        return {
            "features": self.features,
            "scaler": self.scaler.as_json(),
            "reference": self.reference,
            "models": {
                name: {"file": model.save(folder), "params": model.params_json()}
                for name, model in self.models.items()
            },
        }

    @classmethod
    def load(cls, level: str, folder: Path, spec: dict) -> LevelModels:
        scaler = FeatureScaler(**spec["scaler"])
        fitted = cls(level, spec["features"], scaler, reference=spec["reference"])
        n = len(spec["features"])
        for name, m in spec["models"].items():
            if name == "iforest":
                fitted.models[name] = IForestModel.load(folder, m["params"])
            elif name == "autoencoder":
                fitted.models[name] = AutoencoderModel.load(folder, m["params"], n)
            elif name == "lstm":
                fitted.models[name] = LSTMModel.load(folder, m["params"], n)
        return fitted


@dataclass
class ModelVersion:
    """Both levels' models under one version id, with the manifest that describes them."""

    version: str
    levels: dict[str, LevelModels]
    training: dict  # where the training data came from and its fingerprint
    extra: dict = field(default_factory=dict)  # e.g. user-level aggregation references

    @staticmethod
    def new_version_id(training_fingerprint: str) -> str:
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        return f"v{stamp}-{hashlib.sha256(training_fingerprint.encode()).hexdigest()[:8]}"

    def save(self, root: Path, metrics: dict | None = None) -> Path:
        folder = root / self.version
        manifest = {
            "version": self.version,
            "fraudwatch": __version__,
            "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "training": self.training,
            "levels": {name: lm.save(folder / name) for name, lm in self.levels.items()},
            "extra": self.extra,
            "metrics": metrics or {},
        }
        (folder / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
        return folder

    @classmethod
    def load(cls, folder: Path) -> ModelVersion:
        path = Path(folder) / "manifest.json"
        if not path.is_file():
            raise UserError(
                f"{folder} has no manifest.json; point --models-dir at a model version folder"
            )
        manifest = json.loads(path.read_text())
        levels = {
            name: LevelModels.load(name, Path(folder) / name, spec)
            for name, spec in manifest["levels"].items()
        }
        return cls(manifest["version"], levels, manifest["training"], manifest.get("extra", {}))
