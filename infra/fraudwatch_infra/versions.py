"""Every third-party component version the platform deploys, pinned in this one place.

Both deployment paths read it: the Pulumi program imports it, and every chart version, chart
repository, image and server version written in infra/gitops (Argo CD and Flux) is checked
against it by tests/infra/gitops/test_gitops_versions.py, which fails on any drift.

Upgrading a component means changing one line here and the same value in infra/gitops (the
test names each place), reading the upstream upgrade notes linked in
docs/operations/kubernetes.md, and running `pulumi preview` on the dev stack first.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class HelmChart:
    """A Helm chart pinned to an exact version (never a range)."""

    chart: str
    version: str
    repo: str | None = None  # None for OCI charts, whose `chart` is the full oci:// reference


CERT_MANAGER = HelmChart("cert-manager", "v1.18.2", "https://charts.jetstack.io")
ROOK_CEPH = HelmChart("rook-ceph", "v1.17.7", "https://charts.rook.io/release")
STRIMZI = HelmChart("strimzi-kafka-operator", "0.47.0", "https://strimzi.io/charts/")
ECK_OPERATOR = HelmChart("eck-operator", "3.1.0", "https://helm.elastic.co")
PERCONA_MONGODB_OPERATOR = HelmChart(
    "psmdb-operator", "1.20.1", "https://percona.github.io/percona-helm-charts/"
)
SPARK_OPERATOR = HelmChart("spark-operator", "2.2.1", "https://kubeflow.github.io/spark-operator")
AIRFLOW = HelmChart("airflow", "1.18.0", "https://airflow.apache.org")
GRAFANA_OPERATOR = HelmChart("oci://ghcr.io/grafana/helm-charts/grafana-operator", "v5.19.4")
# The monitoring stack the GitOps path installs (the Pulumi program expects one to exist:
# fraudwatch:network.prometheusNamespace).
KUBE_PROMETHEUS_STACK = HelmChart(
    "kube-prometheus-stack", "72.6.2", "https://prometheus-community.github.io/helm-charts"
)

# Versions of the servers the operators run (the operators pull the images themselves).
CEPH_IMAGE = "quay.io/ceph/ceph:v19.2.3"
KAFKA_VERSION = "4.0.0"
KAFKA_METADATA_VERSION = "4.0-IV3"
ELASTICSEARCH_VERSION = "8.19.3"
PERCONA_MONGODB_CR_VERSION = "1.20.1"
MONGODB_IMAGE = "percona/percona-server-mongodb:7.0.18-11"
PERCONA_BACKUP_IMAGE = "percona/percona-backup-mongodb:2.10.0"
SPARK_VERSION = "4.0.0"
AIRFLOW_IMAGE = ("apache/airflow", "3.0.2")
GRAFANA_IMAGE = "grafana/grafana:12.1.1"
# Small image with curl and a POSIX shell, used by the Elasticsearch bootstrap Job.
CURL_IMAGE = "curlimages/curl:8.15.0"
