"""Scoring: features → models → ranked, explained anomalies and where they concentrate."""
