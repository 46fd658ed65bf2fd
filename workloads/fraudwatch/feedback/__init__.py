"""Analyst feedback closes the loop (issue 16, docs/feedback.md): dispositions read as labels
(labels.py), a simulated analyst for generated data (analyst.py), ensemble weights learned
from labels (learning.py) and alert precision measured from verdicts (precision.py)."""
