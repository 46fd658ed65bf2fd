"""Visualisation: Grafana through the grafana-operator.

Dashboards, alert rule groups, contact points and notification policies are taken from
the repository's dashboards/grafana/ (the committed JSON and provisioning YAML): one
GrafanaDashboard per dashboard JSON file, and the provisioning documents translated to the
operator's resources. There is no second copy of any dashboard in infra/.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pulumi
import yaml

from . import versions
from .component import Component, Operator, Options, Placement
from .credentials import kubernetes_secret
from .pod_security import (
    chart_container_context,
    container_security_context,
    pod_security_context,
    resources,
)

GRAFANA_API = "grafana.integreatly.org/v1beta1"
INSTANCE = "fraudwatch"
SELECTOR = {"matchLabels": {"fraudwatch.io/grafana": INSTANCE}}
FOLDER = "fraudwatch"
ELASTICSEARCH_UID = "elasticsearch"
PROMETHEUS_UID = "prometheus"
# The UID of the Grafana image.
GRAFANA_UID = 472
INTERVENTION_URL_PLACEHOLDERS = ("${FRAUDWATCH_INTERVENTION_URL}", "$FRAUDWATCH_INTERVENTION_URL")
_RULE_KEYS = (
    "uid",
    "title",
    "condition",
    "data",
    "noDataState",
    "execErrState",
    "for",
    "annotations",
    "labels",
    "isPaused",
    "notificationSettings",
)


def kubernetes_name(text: str) -> str:
    """A DNS-1123 name from a file stem or title."""
    name = re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-")
    return name[:63].strip("-") or "unnamed"


def dashboard_files(folder: Path) -> list[Path]:
    """Rendered dashboard JSON files (provisioning and alerting folders excluded)."""
    if not folder.is_dir():
        return []
    return sorted(
        p
        for p in folder.rglob("*.json")
        if not {"provisioning", "alerting"} & set(p.relative_to(folder).parts[:-1])
    )


def alerting_documents(folder: Path) -> list[dict[str, Any]]:
    """Grafana alerting provisioning documents (groups, contactPoints, policies)."""
    docs: list[dict[str, Any]] = []
    if not folder.is_dir():
        return docs
    for path in sorted(folder.rglob("*")):
        if path.suffix not in (".yaml", ".yml", ".json") or not path.is_file():
            continue
        if not {"provisioning", "alerting"} & set(path.relative_to(folder).parts[:-1]):
            continue
        text = path.read_text(encoding="utf-8")
        for doc in yaml.safe_load_all(text) if path.suffix != ".json" else [json.loads(text)]:
            if isinstance(doc, dict) and {"groups", "contactPoints", "policies"} & set(doc):
                docs.append(doc)
    return docs


def _substitute(value: Any, url: str) -> Any:
    if isinstance(value, str):
        for placeholder in INTERVENTION_URL_PLACEHOLDERS:
            value = value.replace(placeholder, url)
        return value
    if isinstance(value, dict):
        return {k: _substitute(v, url) for k, v in value.items()}
    if isinstance(value, list):
        return [_substitute(v, url) for v in value]
    return value


def _for_instance(spec: dict[str, Any]) -> dict[str, Any]:
    """The spec of a grafana-operator object for the fraudwatch Grafana instance."""
    return {"instanceSelector": SELECTOR, **spec}


def grafana_operator(namespace: str) -> Operator:
    """The grafana-operator, watching the visualisation namespace only."""
    values = {
        "watchNamespaces": namespace,
        "resources": resources("100m", "256Mi", "500m"),
        "securityContext": chart_container_context(read_only_root=True),
    }
    return Operator("grafana-operator", versions.GRAFANA_OPERATOR, values)


class Visualisation(Component):
    """Grafana, its datasources, and the dashboards and alerting taken from dashboards/grafana/."""

    def __init__(
        self,
        at: Placement,
        search_url: str,
        reader_password: pulumi.Output[str],
        trust_secret: str,
        intervention_url: str,
        grafana_dir: Path,
        opts: Options = None,
    ) -> None:
        super().__init__(at, opts, grafana_operator(at.ns))
        self.grafana = self.custom_resource(
            "grafana",
            GRAFANA_API,
            "Grafana",
            {"name": INSTANCE, "labels": SELECTOR["matchLabels"]},
            {
                "config": {
                    "log": {"mode": "console"},
                    "security": {"cookie_secure": "true", "disable_gravatar": "true"},
                    "analytics": {"reporting_enabled": "false", "check_for_updates": "false"},
                },
                "deployment": {
                    "spec": {
                        "replicas": 1,
                        "template": {
                            "spec": {
                                "securityContext": pod_security_context(GRAFANA_UID),
                                "containers": [
                                    {
                                        "name": "grafana",
                                        "image": versions.GRAFANA_IMAGE,
                                        "resources": resources("200m", "512Mi", "1"),
                                        "securityContext": container_security_context(GRAFANA_UID),
                                    }
                                ],
                            }
                        },
                    }
                },
            },
            [self.release],
        )
        reader = kubernetes_secret(
            "grafana-es-reader",
            at.ns,
            {"password": reader_password},
            self,
            depends_on=[at.namespace.namespace],
        )
        self.custom_resource(
            "datasource-elasticsearch",
            GRAFANA_API,
            "GrafanaDatasource",
            {"name": "elasticsearch"},
            _for_instance(
                {
                    "valuesFrom": [
                        {
                            "targetPath": "secureJsonData.basicAuthPassword",
                            "valueFrom": {
                                "secretKeyRef": {"name": "grafana-es-reader", "key": "password"}
                            },
                        },
                        {
                            "targetPath": "secureJsonData.tlsCACert",
                            "valueFrom": {"secretKeyRef": {"name": trust_secret, "key": "ca.crt"}},
                        },
                    ],
                    "datasource": {
                        "name": "Elasticsearch",
                        "uid": ELASTICSEARCH_UID,
                        "type": "elasticsearch",
                        "access": "proxy",
                        "url": search_url,
                        "basicAuth": True,
                        "basicAuthUser": "grafana-reader",
                        "jsonData": {
                            "index": "fraudwatch-*",
                            "timeField": "ts",
                            "tlsAuthWithCACert": True,
                        },
                        "secureJsonData": {
                            "basicAuthPassword": "${password}",
                            "tlsCACert": "${ca.crt}",
                        },
                    },
                }
            ),
            [self.grafana, reader],
        )
        self.custom_resource(
            "datasource-prometheus",
            GRAFANA_API,
            "GrafanaDatasource",
            {"name": "prometheus"},
            _for_instance(
                {
                    "datasource": {
                        "name": "Prometheus",
                        "uid": PROMETHEUS_UID,
                        "type": "prometheus",
                        "access": "proxy",
                        "url": at.config.visualisation.prometheus_url,
                    },
                }
            ),
            [self.grafana],
        )
        folder = self.custom_resource(
            "folder",
            GRAFANA_API,
            "GrafanaFolder",
            {"name": FOLDER},
            _for_instance({"title": "fraudwatch"}),
            [self.grafana],
        )
        self.dashboards: list[str] = []
        for path in dashboard_files(grafana_dir):
            dashboard_name = kubernetes_name(path.stem)
            self.dashboards.append(dashboard_name)
            self.custom_resource(
                f"dashboard-{dashboard_name}",
                GRAFANA_API,
                "GrafanaDashboard",
                {"name": dashboard_name},
                _for_instance({"folderRef": FOLDER, "json": path.read_text(encoding="utf-8")}),
                [folder],
            )
        self.alert_rule_groups: list[str] = []
        self.contact_points: list[str] = []
        self.notification_policies: list[str] = []
        for doc in alerting_documents(grafana_dir):
            doc = _substitute(doc, intervention_url)
            for group in doc.get("groups", []):
                group_name = kubernetes_name(group["name"])
                self.alert_rule_groups.append(group_name)
                self.custom_resource(
                    f"alert-rule-group-{group_name}",
                    GRAFANA_API,
                    "GrafanaAlertRuleGroup",
                    {"name": group_name},
                    _for_instance(
                        {
                            "name": group["name"],
                            "folderRef": FOLDER,
                            "interval": group.get("interval", "1m"),
                            "rules": [
                                {k: rule[k] for k in _RULE_KEYS if k in rule}
                                for rule in group.get("rules", [])
                            ],
                        }
                    ),
                    [folder],
                )
            for point in doc.get("contactPoints", []):
                for receiver in point.get("receivers", []):
                    cp_name = kubernetes_name(receiver.get("uid") or point["name"])
                    self.contact_points.append(cp_name)
                    spec: dict[str, Any] = {
                        "name": point["name"],
                        "type": receiver["type"],
                        "settings": receiver.get("settings", {}),
                    }
                    if "uid" in receiver:
                        spec["uid"] = receiver["uid"]
                    self.custom_resource(
                        f"contact-point-{cp_name}",
                        GRAFANA_API,
                        "GrafanaContactPoint",
                        {"name": cp_name},
                        _for_instance(spec),
                        [self.grafana],
                    )
            for index, policy in enumerate(doc.get("policies", [])):
                policy_name = f"{INSTANCE}-{index}" if index else INSTANCE
                self.notification_policies.append(policy_name)
                self.custom_resource(
                    f"notification-policy-{policy_name}",
                    GRAFANA_API,
                    "GrafanaNotificationPolicy",
                    {"name": policy_name},
                    _for_instance({"route": {k: v for k, v in policy.items() if k != "orgId"}}),
                    [self.grafana],
                )
        if not self.dashboards:
            pulumi.log.warn(f"visualisation: no dashboard JSON under {grafana_dir}")
        self.register_outputs({"dashboards": self.dashboards})
