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
from fraudwatch.models.calibration import TailCalibration
from fraudwatch.models.copod import CopodModel, CopodParams
from fraudwatch.models.ensemble import Ensemble
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
    copod: CopodParams = field(default_factory=CopodParams)
    autoencoder: AutoencoderParams = field(default_factory=AutoencoderParams)
    lstm: LSTMParams = field(default_factory=LSTMParams)


@dataclass
class LevelModels:
    """Scaler + fitted members + their calibrations and the ensemble for one level. `x` is
    the raw feature matrix. Members whose raw scores are computed elsewhere (the users' LSTM,
    a mean of their transactions' prediction errors) are passed as `external` raw scores."""

    level: str
    features: list[str]
    scaler: FeatureScaler
    models: dict = field(default_factory=dict)
    calibration: dict[str, TailCalibration] = field(default_factory=dict)
    ensemble: Ensemble | None = None

    @classmethod
    def fit(
        cls,
        level: str,
        features: list[str],
        x: np.ndarray,
        names: list[str],
        settings: ModelSettings,
        user_ids: np.ndarray | None = None,
        external: dict[str, np.ndarray] | None = None,
    ) -> LevelModels:
        if len(x) < 2:
            raise UserError(
                f"need at least 2 {level} to fit models, got {len(x)}; generate more data"
            )
        scaler = FeatureScaler.fit(features, x)
        fitted = cls(level, list(features), scaler)
        for name in names:
            if name == "iforest":
                fitted.models[name] = IForestModel(settings.iforest).fit(scaler.impute(x))
            elif name == "copod":
                fitted.models[name] = CopodModel(settings.copod).fit(scaler.impute(x))
            elif name == "autoencoder":
                fitted.models[name] = AutoencoderModel(settings.autoencoder).fit(
                    scaler.standardise(x)
                )
            elif name == "lstm" and user_ids is not None:
                fitted.models[name] = LSTMModel(settings.lstm).fit(scaler.transform(x), user_ids)
        raw = {**fitted.raw_scores(x, user_ids), **(external or {})}
        fitted.calibration = {name: TailCalibration.fit(s) for name, s in raw.items()}
        fitted.ensemble = Ensemble.fit(raw)
        return fitted

    def raw_scores(
        self, x: np.ndarray, user_ids: np.ndarray | None = None, skip: frozenset = frozenset()
    ):
        """Each member's raw score: trees and tails read imputed raw features, the autoencoder
        standard scores, the LSTM the signed-log scaling."""
        out = {}
        for name, model in self.models.items():
            if name in skip:
                continue
            if name in ("iforest", "copod"):
                out[name] = model.score(self.scaler.impute(x))
            elif name == "lstm":
                out[name] = model.score(self.scaler.transform(x), user_ids)
            else:
                out[name] = model.score(self.scaler.standardise(x))
        return out

    def score(
        self,
        x: np.ndarray,
        user_ids: np.ndarray | None = None,
        external: dict[str, np.ndarray] | None = None,
    ):
        """(scaled features, {member: calibrated score}, ensemble score) for a raw feature
        matrix; `external` adds members scored elsewhere."""
        assert self.ensemble is not None, "fit or load the models first"
        external = external or {}
        raw = {**self.raw_scores(x, user_ids, frozenset(external)), **external}
        raw = {name: s for name, s in raw.items() if name in self.calibration}
        calibrated = {name: self.calibration[name].score(s) for name, s in raw.items()}
        return self.scaler.transform(x), calibrated, self.ensemble.score(raw)

    def save(self, folder: Path) -> dict:
        assert self.ensemble is not None, "fit the models first"
        folder.mkdir(parents=True, exist_ok=True)
        return {
            "features": self.features,
            "scaler": self.scaler.as_json(),
            "calibration": {name: c.as_json() for name, c in self.calibration.items()},
            "ensemble": self.ensemble.as_json(),
            "models": {
                name: {"file": model.save(folder), "params": model.params_json()}
                for name, model in self.models.items()
            },
        }

    @classmethod
    def load(cls, level: str, folder: Path, spec: dict) -> LevelModels:
        if "ensemble" not in spec:
            raise UserError(
                f"the model version in {folder.parent} was fitted by a fraudwatch before 0.2 "
                "(rank-percentile ensemble); fit a new version with fraudwatch score"
            )
        scaler = FeatureScaler(**spec["scaler"])
        fitted = cls(
            level,
            spec["features"],
            scaler,
            calibration={n: TailCalibration.from_json(c) for n, c in spec["calibration"].items()},
            ensemble=Ensemble.from_json(spec["ensemble"]),
        )
        n = len(spec["features"])
        for name, m in spec["models"].items():
            if name == "iforest":
                fitted.models[name] = IForestModel.load(folder, m["params"])
            elif name == "copod":
                fitted.models[name] = CopodModel.load(folder, m["params"])
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
    extra: dict = field(default_factory=dict)  # anything a later reader needs to know
    # The score thresholds in force when the version was fitted (scoring/thresholds.py);
    # the stream and the decisions read them from here.
    thresholds: dict = field(default_factory=dict)

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
            "thresholds": self.thresholds,
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
        return cls(
            manifest["version"],
            levels,
            manifest["training"],
            manifest.get("extra", {}),
            manifest.get("thresholds", {}),
        )
