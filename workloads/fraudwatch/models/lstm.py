"""An LSTM over each user's last K transactions: at every step it predicts the next
transaction's features from the ones before; a transaction that the user's own recent history
did not predict well is anomalous (mean squared prediction error).

Rows must arrive grouped by user and sorted by time within the user. Only each user's last K
transactions are scored (the first transaction of a user has no history and no score); the
ensemble uses the other models for rows without an LSTM score.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from fraudwatch.models.deep import torch_module


@dataclass(frozen=True)
class LSTMParams:
    window: int = 16  # K: the last K transactions of each user are scored
    hidden: int = 32
    epochs: int = 6
    batch_size: int = 256
    max_users: int = 4_000  # trained on the sequences of at most this many users
    learning_rate: float = 3e-3
    random_state: int = 0


def sequence_windows(x: np.ndarray, user_ids: np.ndarray, window: int):
    """Left-padded windows of each user's last window+1 rows.

    Returns (windows [users, window+1, features], valid [users, window+1], rows [users,
    window+1]) where rows holds the row index in x of each slot (-1 for padding)."""
    n = len(user_ids)
    if n == 0:
        return (
            np.zeros((0, window + 1, x.shape[1]), np.float32),
            np.zeros((0, window + 1), bool),
            np.zeros((0, window + 1), np.int64),
        )
    change = np.flatnonzero(np.diff(user_ids)) + 1
    starts = np.concatenate([[0], change])
    ends = np.concatenate([change, [n]])
    group = np.repeat(np.arange(len(starts)), ends - starts)
    from_end = ends[group] - np.arange(n) - 1
    keep = from_end <= window
    slot = window - from_end[keep]
    windows = np.zeros((len(starts), window + 1, x.shape[1]), np.float32)
    rows = np.full((len(starts), window + 1), -1, np.int64)
    windows[group[keep], slot] = x[keep]
    rows[group[keep], slot] = np.flatnonzero(keep)
    return windows, rows >= 0, rows


class _Predictor:
    """LSTM + linear head, built lazily so that importing this module does not import torch."""

    @staticmethod
    def build(torch, n_features: int, hidden: int):
        class Net(torch.nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.lstm = torch.nn.LSTM(n_features, hidden, batch_first=True)
                self.head = torch.nn.Linear(hidden, n_features)

            def forward(self, seq):
                out, _ = self.lstm(seq)
                return self.head(out)

        return Net()


class LSTMModel:
    name = "lstm"

    def __init__(self, params: LSTMParams | None = None) -> None:
        self.params = params or LSTMParams()
        self.net: Any = None  # a torch module once fitted or loaded
        self.n_features = 0

    def _errors(self, windows: np.ndarray, valid: np.ndarray):
        """Per-slot prediction errors [users, window+1] (NaN where not predicted)."""
        torch = torch_module()
        seq = torch.from_numpy(windows)
        pred = self.net(seq[:, :-1])
        err = ((pred - seq[:, 1:]) ** 2).mean(dim=2)
        ok = torch.from_numpy(valid[:, :-1] & valid[:, 1:])
        return err, ok

    def fit(self, x: np.ndarray, user_ids: np.ndarray) -> LSTMModel:
        torch, p = torch_module(), self.params
        torch.manual_seed(p.random_state)
        self.n_features = x.shape[1]
        self.net = _Predictor.build(torch, self.n_features, p.hidden)
        windows, valid, _ = sequence_windows(x, user_ids, p.window)
        useful = np.flatnonzero(valid.sum(axis=1) >= 2)
        if len(useful) > p.max_users:
            rng = np.random.default_rng(p.random_state)
            useful = np.sort(rng.choice(useful, p.max_users, replace=False))
        windows, valid = windows[useful], valid[useful]
        optimiser = torch.optim.Adam(self.net.parameters(), lr=p.learning_rate)
        generator = torch.Generator().manual_seed(p.random_state)
        self.net.train()
        for _ in range(p.epochs):
            for batch in torch.randperm(len(windows), generator=generator).split(p.batch_size):
                idx = batch.numpy()
                err, ok = self._errors(windows[idx], valid[idx])
                loss = (err * ok).sum() / ok.sum().clamp(min=1)
                optimiser.zero_grad()
                loss.backward()
                optimiser.step()
        self.net.eval()
        return self

    def score(self, x: np.ndarray, user_ids: np.ndarray) -> np.ndarray:
        """Prediction error per row (NaN for rows that are not among a user's last K, or that
        start a user's history). Rows must be grouped by user and sorted by time."""
        torch = torch_module()
        assert self.net is not None, "fit or load the model first"
        out = np.full(len(x), np.nan)
        windows, valid, rows = sequence_windows(x, user_ids, self.params.window)
        with torch.no_grad():
            for start in range(0, len(windows), 4096):
                s = slice(start, start + 4096)
                err, ok = self._errors(windows[s], valid[s])
                err, ok = err.numpy(), ok.numpy()
                target = rows[s][:, 1:]
                out[target[ok]] = err[ok]
        return out

    def save(self, folder: Path) -> str:
        torch_module().save(self.net.state_dict(), folder / "lstm.pt")
        return "lstm.pt"

    @classmethod
    def load(cls, folder: Path, params: dict, n_features: int) -> LSTMModel:
        torch = torch_module()
        model = cls(LSTMParams(**params))
        model.n_features = n_features
        model.net = _Predictor.build(torch, n_features, model.params.hidden)
        model.net.load_state_dict(torch.load(folder / "lstm.pt", weights_only=True))
        model.net.eval()
        return model

    def params_json(self) -> dict:
        return asdict(self.params)
