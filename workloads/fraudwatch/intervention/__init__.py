"""The intervention service: act on anomalies (lock, block, step-up), safely and on the record.

`fraudwatch serve` runs :func:`fraudwatch.intervention.api.create_app` under uvicorn. See
docs/intervention.md for the API, the permission matrix, the policy and the audit chain.
"""
