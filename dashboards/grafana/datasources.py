"""Grafana datasource provisioning: hosts and credentials come from the environment."""

from __future__ import annotations

from typing import Any

from panel_queries import ELASTICSEARCH_UID, PROMETHEUS_UID, TIME_FIELD


def provisioning() -> dict[str, Any]:
    return {
        "apiVersion": 1,
        "datasources": [
            {
                "name": "Elasticsearch",
                "uid": ELASTICSEARCH_UID,
                "type": "elasticsearch",
                "access": "proxy",
                "url": "${FRAUDWATCH_ELASTICSEARCH_URL}",
                "basicAuth": True,
                "basicAuthUser": "${FRAUDWATCH_ES_READER_USER}",
                "jsonData": {
                    "index": "fraudwatch-*",
                    "timeField": TIME_FIELD,
                    "tlsAuthWithCACert": True,
                },
                "secureJsonData": {
                    "basicAuthPassword": "${FRAUDWATCH_ES_READER_PASSWORD}",
                    "tlsCACert": "${FRAUDWATCH_ES_CA_CERT}",
                },
                "editable": False,
            },
            {
                "name": "Prometheus",
                "uid": PROMETHEUS_UID,
                "type": "prometheus",
                "access": "proxy",
                "url": "${FRAUDWATCH_PROMETHEUS_URL}",
                "jsonData": {"httpMethod": "POST"},
                "editable": False,
            },
        ],
    }
