"""BI: the Tableau connector — a CronJob running `fraudwatch publish --to tableau`, which
builds a .hyper extract from the scored data on Ceph S3 and publishes it with a personal
access token. The token's secret comes from `pulumi config set --secret`."""

from __future__ import annotations

import pulumi
import pulumi_kubernetes as k8s

from .component import Component, Options, Placement
from .credentials import kubernetes_secret
from .pod_security import container_security_context, pod_security_context, resources
from .storage import BUCKET, Storage

PAT_SECRET = "tableau-pat"


class Bi(Component):
    def __init__(
        self,
        at: Placement,
        storage: Storage,
        pat_secret: pulumi.Output[str],
        trust_secret: str,
        opts: Options = None,
    ) -> None:
        super().__init__(at, opts)
        bc = at.config.bi
        pat = kubernetes_secret(
            PAT_SECRET,
            at.ns,
            {"name": bc.tableau_pat_name, "secret": pat_secret},
            self,
            depends_on=[at.namespace.namespace],
        )
        s3_secret = storage.grant_s3(at.namespace)
        container = {
            "name": "publish",
            "image": at.config.workloads_image.reference,
            "imagePullPolicy": "IfNotPresent",
            "args": ["publish", "--to", "tableau", "--input", f"s3://{BUCKET}/scored"],
            # Credentials are files (the chart's convention, FRAUDWATCH_SECRETS_DIR), not
            # environment variables that leak into crash dumps and child processes.
            "env": [
                {"name": "TABLEAU_SERVER_URL", "value": bc.tableau_server_url},
                {"name": "TABLEAU_SITE", "value": bc.tableau_site},
                {"name": "FRAUDWATCH_SECRETS_DIR", "value": "/var/run/secrets/fraudwatch"},
                {"name": "AWS_SHARED_CREDENTIALS_FILE", "value": "/var/run/secrets/s3/credentials"},
                {"name": "AWS_ENDPOINT_URL", "value": storage.s3_endpoint},
                {"name": "AWS_CA_BUNDLE", "value": "/var/run/fraudwatch-tls/ca.crt"},
            ],
            "resources": resources("500m", "1Gi", "1"),
            "securityContext": container_security_context(),
            "volumeMounts": [
                {"name": "tmp", "mountPath": "/tmp"},
                {"name": "tls", "mountPath": "/var/run/fraudwatch-tls", "readOnly": True},
                {"name": "tableau", "mountPath": "/var/run/secrets/fraudwatch", "readOnly": True},
                {"name": "s3", "mountPath": "/var/run/secrets/s3", "readOnly": True},
            ],
        }
        self.cron_job = k8s.batch.v1.CronJob(
            "tableau-publish",
            metadata={"name": "tableau-publish", "namespace": at.ns},
            spec={
                "schedule": bc.schedule,
                "timeZone": "Etc/UTC",
                "concurrencyPolicy": "Forbid",
                "successfulJobsHistoryLimit": 3,
                "failedJobsHistoryLimit": 3,
                "jobTemplate": {
                    "spec": {
                        "backoffLimit": 2,
                        "activeDeadlineSeconds": 3600,
                        "template": {
                            "spec": {
                                "restartPolicy": "Never",
                                "automountServiceAccountToken": False,
                                "securityContext": pod_security_context(),
                                "containers": [container],
                                "volumes": [
                                    {"name": "tmp", "emptyDir": {"sizeLimit": "5Gi"}},
                                    {
                                        "name": "tls",
                                        "secret": {
                                            "secretName": trust_secret,
                                            "items": [{"key": "ca.crt", "path": "ca.crt"}],
                                        },
                                    },
                                    {
                                        "name": "tableau",
                                        "secret": {
                                            "secretName": PAT_SECRET,
                                            "items": [
                                                {"key": "name", "path": "tableau-pat-name"},
                                                {"key": "secret", "path": "tableau-pat-secret"},
                                            ],
                                        },
                                    },
                                    {
                                        "name": "s3",
                                        "secret": {
                                            "secretName": s3_secret,
                                            "items": [
                                                {"key": "credentials", "path": "credentials"}
                                            ],
                                        },
                                    },
                                ],
                            },
                        },
                    }
                },
            },
            opts=pulumi.ResourceOptions(parent=self, depends_on=[pat]),
        )
        self.register_outputs({})
