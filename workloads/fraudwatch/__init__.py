"""fraudwatch: find the transactions and users that do not fit, explain why, and act on them."""

__version__ = "0.1.0"
