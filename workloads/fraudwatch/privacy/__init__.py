"""Personal data beyond masking (issue 20): retention across every store
(`fraudwatch privacy retain`, docs/privacy.md). Imports nothing heavy: the pipeline
configuration reads `retention_policy` from here."""
