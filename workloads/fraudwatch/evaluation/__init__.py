"""How well the scores rank the known anomalies."""
