"""An LSTM over each user's whole transaction sequence: at every step it predicts the next
transaction's features from the ones before; a transaction that the user's own history did not
predict well is anomalous (mean squared prediction error).

Rows must arrive grouped by user and sorted by time within the user. One pass over each user's
history scores every transaction that has at least one transaction before it; only a user's
first transaction has no score (the ensemble uses the other members there). Users are scored in
chunks of similar sequence length, so padding costs little. Training reads random windows of
`train_window` consecutive transactions from at most `max_users` users.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from fraudwatch.models.deep import torch_module


@dataclass(frozen=True)
class LSTMParams:
    train_window: int = 32  # consecutive transactions per training sequence
    hidden: int = 32
    epochs: int = 6
    batch_size: int = 256
    max_users: int = 4_000  # trained on the sequences of at most this many users
    learning_rate: float = 3e-3
    random_state: int = 0
    chunk_cells: int = 262_144  # users x padded length scored in one pass (bounds memory)


def user_bounds(user_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(start, end) row of each user's run in rows grouped by user."""
    n = len(user_ids)
    if n == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    change = np.flatnonzero(np.diff(user_ids)) + 1
    return np.concatenate([[0], change]), np.concatenate([change, [n]])


def padded(x: np.ndarray, starts: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sequences [users, max length, features] (zero-padded at the end) and their row index in
    x (-1 for padding)."""
    width = int(lengths.max()) if len(lengths) else 0
    offsets = np.arange(width)
    rows = starts[:, None] + offsets[None, :]
    valid = offsets[None, :] < lengths[:, None]
    rows = np.where(valid, rows, -1)
    seq = np.zeros((len(starts), width, x.shape[1]), np.float32)
    seq[valid] = x[rows[valid]]
    return seq, rows


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

    def _errors(self, seq: np.ndarray, rows: np.ndarray):
        """Per-step prediction errors [users, length-1] and where they are real."""
        torch = torch_module()
        t = torch.from_numpy(seq)
        pred = self.net(t[:, :-1])
        err = ((pred - t[:, 1:]) ** 2).mean(dim=2)
        ok = torch.from_numpy((rows[:, :-1] >= 0) & (rows[:, 1:] >= 0))
        return err, ok

    def fit(self, x: np.ndarray, user_ids: np.ndarray) -> LSTMModel:
        torch, p = torch_module(), self.params
        torch.manual_seed(p.random_state)
        rng = np.random.default_rng(p.random_state)
        self.n_features = x.shape[1]
        self.net = _Predictor.build(torch, self.n_features, p.hidden)
        starts, ends = user_bounds(user_ids)
        lengths = ends - starts
        useful = np.flatnonzero(lengths >= 2)
        if len(useful) > p.max_users:
            useful = np.sort(rng.choice(useful, p.max_users, replace=False))
        # One window of train_window transactions per user, at a random place in the history.
        take = np.minimum(lengths[useful], p.train_window)
        offset = (rng.random(len(useful)) * (lengths[useful] - take + 1)).astype(np.int64)
        seq, rows = padded(x, starts[useful] + offset, take)
        optimiser = torch.optim.Adam(self.net.parameters(), lr=p.learning_rate)
        generator = torch.Generator().manual_seed(p.random_state)
        self.net.train()
        for _ in range(p.epochs):
            for batch in torch.randperm(len(seq), generator=generator).split(p.batch_size):
                idx = batch.numpy()
                err, ok = self._errors(seq[idx], rows[idx])
                loss = (err * ok).sum() / ok.sum().clamp(min=1)
                optimiser.zero_grad()
                loss.backward()
                optimiser.step()
        self.net.eval()
        return self

    def score(self, x: np.ndarray, user_ids: np.ndarray) -> np.ndarray:
        """Prediction error per row (NaN for each user's first row). Rows must be grouped by
        user and sorted by time."""
        torch = torch_module()
        assert self.net is not None, "fit or load the model first"
        out = np.full(len(x), np.nan)
        starts, ends = user_bounds(user_ids)
        lengths = ends - starts
        order = np.argsort(lengths, kind="stable")
        order = order[lengths[order] >= 2]
        begin = 0
        with torch.no_grad():
            while begin < len(order):
                # Users sorted by length: a chunk pads to its longest, bounded in cells.
                width = int(lengths[order[begin]])
                end = begin + 1
                while end < len(order):
                    width = int(lengths[order[end]])
                    if (end - begin + 1) * width > self.params.chunk_cells:
                        break
                    end += 1
                chunk = order[begin:end]
                seq, rows = padded(x, starts[chunk], lengths[chunk])
                err, ok = self._errors(seq, rows)
                err, ok = err.numpy(), ok.numpy()
                target = rows[:, 1:]
                out[target[ok]] = err[ok]
                begin = end
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
