"""A dense autoencoder: rows it cannot reconstruct well are anomalous (mean squared error)."""

from __future__ import annotations

import itertools
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from fraudwatch.models.deep import torch_module


@dataclass(frozen=True)
class AutoencoderParams:
    hidden: tuple[int, ...] = (16, 6)  # encoder widths; the decoder mirrors them
    epochs: int = 6
    batch_size: int = 512
    max_rows: int = 40_000  # trained on a random subset of at most this many rows
    learning_rate: float = 3e-3
    random_state: int = 0


def _network(torch, n_features: int, hidden: tuple[int, ...]):
    nn = torch.nn
    widths = [n_features, *hidden]
    layers: list = []
    for a, b in itertools.pairwise(widths):
        layers += [nn.Linear(a, b), nn.ReLU()]
    for a, b in zip(widths[::-1][:-1], widths[::-1][1:], strict=True):
        layers += [nn.Linear(a, b), nn.ReLU()]
    return nn.Sequential(*layers[:-1])  # linear output


class AutoencoderModel:
    name = "autoencoder"

    def __init__(self, params: AutoencoderParams | None = None) -> None:
        self.params = params or AutoencoderParams()
        self.net: Any = None  # a torch module once fitted or loaded
        self.n_features = 0

    def fit(self, x: np.ndarray) -> AutoencoderModel:
        torch, p = torch_module(), self.params
        torch.manual_seed(p.random_state)
        self.n_features = x.shape[1]
        self.net = _network(torch, self.n_features, tuple(p.hidden))
        optimiser = torch.optim.Adam(self.net.parameters(), lr=p.learning_rate)
        if len(x) > p.max_rows:
            x = x[np.random.default_rng(p.random_state).choice(len(x), p.max_rows, replace=False)]
        data = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
        generator = torch.Generator().manual_seed(p.random_state)
        self.net.train()
        for _ in range(p.epochs):
            for batch in torch.randperm(len(data), generator=generator).split(p.batch_size):
                rows = data[batch]
                loss = torch.nn.functional.mse_loss(self.net(rows), rows)
                optimiser.zero_grad()
                loss.backward()
                optimiser.step()
        self.net.eval()
        return self

    def score(self, x: np.ndarray) -> np.ndarray:
        torch = torch_module()
        assert self.net is not None, "fit or load the model first"
        out = np.empty(len(x))
        with torch.no_grad():
            for start in range(0, len(x), 65_536):
                rows = torch.from_numpy(
                    np.ascontiguousarray(x[start : start + 65_536], dtype=np.float32)
                )
                out[start : start + len(rows)] = ((self.net(rows) - rows) ** 2).mean(dim=1).numpy()
        return out

    def save(self, folder: Path) -> str:
        torch = torch_module()
        torch.save(self.net.state_dict(), folder / "autoencoder.pt")
        return "autoencoder.pt"

    @classmethod
    def load(cls, folder: Path, params: dict, n_features: int) -> AutoencoderModel:
        torch = torch_module()
        params = {**params, "hidden": tuple(params["hidden"])}
        model = cls(AutoencoderParams(**params))
        model.n_features = n_features
        model.net = _network(torch, n_features, model.params.hidden)
        model.net.load_state_dict(torch.load(folder / "autoencoder.pt", weights_only=True))
        model.net.eval()
        return model

    def params_json(self) -> dict:
        return asdict(self.params)
