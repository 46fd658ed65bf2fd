"""Synthetic transactions from four personas, with injected anomaly scenarios and ground truth."""
