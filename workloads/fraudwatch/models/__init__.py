"""Anomaly models: Isolation Forest, empirical-copula tail probabilities (COPOD), a dense
autoencoder, an LSTM over each user's transaction sequence, and their calibrated, equally
weighted ensemble (docs/models.md). Higher raw score = more anomalous."""

MODEL_NAMES = ("iforest", "copod", "autoencoder", "lstm")
