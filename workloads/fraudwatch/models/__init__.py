"""Anomaly models: Isolation Forest, a dense autoencoder, an LSTM over each user's recent
transactions, and their rank-based ensemble. Higher raw score = more anomalous."""

MODEL_NAMES = ("iforest", "autoencoder", "lstm")
