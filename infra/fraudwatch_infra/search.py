"""Search: Elasticsearch with ECK, and the index templates and ILM policies from
dashboards/elasticsearch/ applied by a Job once the cluster is green.

The HTTP layer uses a certificate from the platform CA. Two file-realm users are generated:
`fraudwatch-writer` (streaming scorer, batch publisher, the bootstrap Job) and
`grafana-reader` (the Grafana datasource); neither is the `elastic` superuser.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import pulumi
import pulumi_kubernetes as k8s
import yaml

from . import versions
from .component import Component, Operator, Options, Placement
from .config_values import Size
from .credentials import generated_password, kubernetes_secret
from .pod_security import (
    chart_container_context,
    container_security_context,
    pod_security_context,
    resources,
    security_context,
)
from .tls import Tls, certificate

CLUSTER = "fraudwatch"
HTTP_TLS_SECRET = "fraudwatch-es-http-tls"
WRITER = "fraudwatch-writer"
READER = "grafana-reader"
# The UID of the Elasticsearch image.
ELASTICSEARCH_UID = 1000

ROLES = {
    "fraudwatch_writer": {
        "cluster": ["monitor", "manage_index_templates", "manage_ilm"],
        "indices": [{"names": ["fraudwatch-*"], "privileges": ["all"]}],
    },
    "fraudwatch_reader": {
        "cluster": ["monitor"],
        "indices": [{"names": ["fraudwatch-*"], "privileges": ["read", "view_index_metadata"]}],
    },
}

# Order matters: an index template may name an ILM policy or component templates.
_KINDS = (
    ("ilm", "_ilm/policy"),
    ("component-template", "_component_template"),
    ("index-template", "_index_template"),
)

BOOTSTRAP_SCRIPT = """\
set -eu
auth="$(cat /credentials/username):$(cat /credentials/password)"
echo "waiting for $ES_URL to be green"
until curl -fsS --cacert /tls/ca.crt -u "$auth" \\
    "$ES_URL/_cluster/health?wait_for_status=green&timeout=50s" >/dev/null; do
  sleep 10
done
for file in $(ls /definitions | sort); do
  key="${file%.json}"
  kind="${key#*-}"; kind="${kind%%--*}"
  name="${key#*--}"
  case "$kind" in
    ilm) path="_ilm/policy/$name" ;;
    component-template) path="_component_template/$name" ;;
    index-template) path="_index_template/$name" ;;
    *) echo "unknown definition kind in $file" >&2; exit 1 ;;
  esac
  echo "PUT $path"
  curl -fsS --cacert /tls/ca.crt -u "$auth" -X PUT -H 'Content-Type: application/json' \\
    --data-binary "@/definitions/$file" "$ES_URL/$path"
  echo
done
"""


@dataclass(frozen=True)
class SearchDefinition:
    kind: str  # ilm | component-template | index-template
    name: str
    body: dict[str, object]

    @property
    def key(self) -> str:
        order = [k for k, _ in _KINDS].index(self.kind) + 1
        return f"{order}-{self.kind}--{self.name}.json"


def classify(path: Path) -> str | None:
    """Which Elasticsearch API a definition file belongs to, from its folder and name."""
    parts = [p.lower() for p in path.parts]
    text = "/".join(parts)
    if any(p.startswith("watch") for p in parts):  # not "fraudwatch-…"
        return None  # Watcher needs a paid licence; shipped for those who have one.
    if "ilm" in text or "lifecycle" in text:
        return "ilm"
    if "component" in text:
        return "component-template"
    if "template" in text or "mapping" in text:
        return "index-template"
    return None


def load_definitions(folder: Path) -> list[SearchDefinition]:
    """Every ILM policy and (component/index) template under `folder` (JSON or YAML)."""
    definitions: list[SearchDefinition] = []
    if not folder.is_dir():
        return definitions
    for path in sorted(folder.rglob("*")):
        if path.suffix not in (".json", ".yaml", ".yml") or not path.is_file():
            continue
        kind = classify(path.relative_to(folder))
        if kind is None:
            pulumi.log.info(f"search: not an ILM policy or template, skipped: {path.name}")
            continue
        text = path.read_text(encoding="utf-8")
        body = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
        if not isinstance(body, dict):
            raise ValueError(f"{path}: an Elasticsearch definition must be a JSON object")
        name = path.name.split(".")[0]
        definitions.append(SearchDefinition(kind, name, body))
    return definitions


def _node_set(name: str, count: int, roles: list[str], size: Size, disk: str, storage_class: str):
    return {
        "name": name,
        "count": count,
        "config": {"node.roles": roles, "node.store.allow_mmap": False},
        "podTemplate": {
            "spec": {
                "securityContext": pod_security_context(ELASTICSEARCH_UID),
                "containers": [
                    {
                        "name": "elasticsearch",
                        "resources": size.resources(),
                        # Elasticsearch writes its keystore and tmp under the root fs.
                        "securityContext": container_security_context(
                            ELASTICSEARCH_UID, read_only_root=False
                        ),
                    }
                ],
            }
        },
        "volumeClaimTemplates": [
            {
                "metadata": {"name": "elasticsearch-data"},
                "spec": {
                    "accessModes": ["ReadWriteOnce"],
                    "storageClassName": storage_class,
                    "resources": {"requests": {"storage": disk}},
                },
            }
        ],
    }


def eck_operator(namespace: str) -> Operator:
    """Elastic's ECK operator, managing the search namespace only."""
    values = {
        "resources": resources("100m", "256Mi", "1"),
        "managedNamespaces": [namespace],
        "podSecurityContext": security_context(),
        "securityContext": chart_container_context(read_only_root=True),
    }
    return Operator("eck-operator", versions.ECK_OPERATOR, values)


class Search(Component):
    """Elasticsearch through ECK: the cluster with its HTTP certificate, the writer and reader
    users and their roles, and the Job that applies the index templates and ILM policies."""

    def __init__(
        self,
        at: Placement,
        tls: Tls,
        storage_class: str,
        definitions_dir: Path,
        opts: Options = None,
    ) -> None:
        super().__init__(at, opts, eck_operator(at.ns))
        sc = at.config.search
        ha = at.config.high_availability
        service = f"{CLUSTER}-es-http"
        http_tls = certificate(
            HTTP_TLS_SECRET,
            at.ns,
            [f"{service}.{at.ns}.svc", service, f"{service}.{at.ns}"],
            self,
            tls,
        )
        self.passwords = {
            WRITER: generated_password("es-writer"),
            READER: generated_password("es-reader"),
        }
        users = [
            kubernetes_secret(
                f"es-user-{user}",
                at.ns,
                {"username": user, "password": self.passwords[user], "roles": role},
                parent=self,
                secret_type="kubernetes.io/basic-auth",
                depends_on=[at.namespace.namespace],
            )
            for user, role in ((WRITER, "fraudwatch_writer"), (READER, "fraudwatch_reader"))
        ]
        roles = k8s.core.v1.Secret(
            f"{at.ns}-es-roles",
            metadata={"name": "es-roles", "namespace": at.ns},
            string_data={"roles.yml": yaml.safe_dump(ROLES, sort_keys=True)},
            opts=pulumi.ResourceOptions(parent=self, depends_on=[at.namespace.namespace]),
        )
        if sc.data_nodes > 0:
            node_sets = [
                _node_set(
                    "masters", sc.master_nodes, ["master"], sc.master_size, "10Gi", storage_class
                ),
                _node_set(
                    "data",
                    sc.data_nodes,
                    ["data", "ingest"],
                    sc.data_size,
                    sc.data_storage,
                    storage_class,
                ),
            ]
        else:
            node_sets = [
                _node_set(
                    "masters",
                    sc.master_nodes,
                    ["master", "data", "ingest"],
                    sc.master_size,
                    sc.data_storage,
                    storage_class,
                )
            ]
        pdb: dict[str, object] = (
            {
                "spec": {
                    "maxUnavailable": 1,
                    "selector": {
                        "matchLabels": {"elasticsearch.k8s.elastic.co/cluster-name": CLUSTER}
                    },
                }
            }
            if ha
            else {}  # ECK: an empty object disables its default PDB (single-node dev).
        )
        self.cluster = self.custom_resource(
            "elasticsearch",
            "elasticsearch.k8s.elastic.co/v1",
            "Elasticsearch",
            {"name": CLUSTER},
            {
                "version": versions.ELASTICSEARCH_VERSION,
                "http": {"tls": {"certificate": {"secretName": HTTP_TLS_SECRET}}},
                "auth": {
                    "fileRealm": [
                        {"secretName": f"es-user-{WRITER}"},
                        {"secretName": f"es-user-{READER}"},
                    ],
                    "roles": [{"secretName": "es-roles"}],
                },
                "nodeSets": node_sets,
                "podDisruptionBudget": pdb,
            },
            [self.release, http_tls, roles, *users],
        )
        self.url = f"https://{service}.{at.ns}.svc:9200"
        self.definitions = load_definitions(definitions_dir)
        self._bootstrap_job(at.ns, at.namespace.namespace)
        self.register_outputs({"url": self.url})

    def _bootstrap_job(self, ns: str, namespace: pulumi.Resource) -> None:
        if not self.definitions:
            pulumi.log.warn("search: no index templates or ILM policies found; no bootstrap Job")
            return
        data = {d.key: json.dumps(d.body, sort_keys=True) for d in self.definitions}
        digest = hashlib.sha256(
            json.dumps([data, BOOTSTRAP_SCRIPT], sort_keys=True).encode()
        ).hexdigest()[:8]
        definitions = k8s.core.v1.ConfigMap(
            "es-definitions",
            metadata={"name": f"es-definitions-{digest}", "namespace": ns},
            data={**data, "apply.sh": BOOTSTRAP_SCRIPT},
            # Created in the namespace: only once it exists (found by test_k8s_pulumi).
            opts=pulumi.ResourceOptions(parent=self, depends_on=[namespace]),
        )
        items = [{"key": key, "path": key} for key in sorted(data)]
        k8s.batch.v1.Job(
            "es-bootstrap",
            metadata={"name": f"es-bootstrap-{digest}", "namespace": ns},
            spec={
                "backoffLimit": 6,
                "activeDeadlineSeconds": 3600,
                "template": {
                    "metadata": {"labels": {"app.kubernetes.io/name": "es-bootstrap"}},
                    "spec": {
                        "restartPolicy": "OnFailure",
                        "automountServiceAccountToken": False,
                        "securityContext": pod_security_context(),
                        "containers": [
                            {
                                "name": "apply",
                                "image": versions.CURL_IMAGE,
                                "imagePullPolicy": "IfNotPresent",
                                "command": ["/bin/sh", "/scripts/apply.sh"],
                                "env": [{"name": "ES_URL", "value": self.url}],
                                "resources": resources("50m", "64Mi", "200m"),
                                "securityContext": container_security_context(),
                                "volumeMounts": [
                                    {
                                        "name": "definitions",
                                        "mountPath": "/definitions",
                                        "readOnly": True,
                                    },
                                    {"name": "scripts", "mountPath": "/scripts", "readOnly": True},
                                    {"name": "tls", "mountPath": "/tls", "readOnly": True},
                                    {
                                        "name": "credentials",
                                        "mountPath": "/credentials",
                                        "readOnly": True,
                                    },
                                ],
                            }
                        ],
                        "volumes": [
                            {
                                "name": "definitions",
                                "configMap": {"name": f"es-definitions-{digest}", "items": items},
                            },
                            {
                                "name": "scripts",
                                "configMap": {
                                    "name": f"es-definitions-{digest}",
                                    "items": [{"key": "apply.sh", "path": "apply.sh"}],
                                },
                            },
                            {
                                "name": "tls",
                                "secret": {
                                    "secretName": HTTP_TLS_SECRET,
                                    "items": [{"key": "ca.crt", "path": "ca.crt"}],
                                },
                            },
                            {
                                "name": "credentials",
                                "secret": {
                                    "secretName": f"es-user-{WRITER}",
                                    "items": [
                                        {"key": "username", "path": "username"},
                                        {"key": "password", "path": "password"},
                                    ],
                                },
                            },
                        ],
                    },
                },
            },
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.cluster, definitions]),
        )
