"""The project's policies enforced by the Kubernetes API server itself: ValidatingAdmissionPolicies
(admissionregistration.k8s.io/v1, CEL; no webhook, nothing to run) and their bindings.

The unit tests check what this repository declares before it is applied
(tests/infra/pulumi/platform_policies.py); these refuse, at the API server, whatever reaches the
bound namespaces by any path (Pulumi, Argo CD, Flux, kubectl):

- fraudwatch-non-root: every container runs as non-root (runAsNonRoot on the container or the
  pod), never as UID 0, without privilege escalation and unprivileged;
- fraudwatch-resource-limits: every container requests and limits CPU and memory;
- fraudwatch-no-plaintext-secrets: no environment variable whose name says password, secret,
  token, credential or key carries a literal value (use valueFrom.secretKeyRef or a file;
  names ending in _FILE, _DIR or _PATH point at one and are allowed);
- fraudwatch-default-deny: the NetworkPolicy named default-deny selects every pod and allows
  nothing, and no NetworkPolicy has a rule open to every peer (an ingress rule without `from`,
  an egress rule without `to` or `ports`).

An admission policy sees one object at a time, so it cannot require that default-deny exists:
both deployment paths create it with the namespace (namespaces.py, `default_deny()` here for
the GitOps path) and the tests check it is there.

The objects are plain manifests, used by the Pulumi program (enforcement.py) and rendered into
infra/gitops by `python infra/render_gitops_policies.py` (tests check the file is current).
"""

from __future__ import annotations

from typing import Any

POLICY_PREFIX = "fraudwatch-"
DEFAULT_DENY = "default-deny"
LABELS = {"app.kubernetes.io/part-of": "fraudwatch"}

_POD_RULES = [
    {
        "apiGroups": [""],
        "apiVersions": ["v1"],
        "resources": ["pods"],
        "operations": ["CREATE", "UPDATE"],
    },
    {
        "apiGroups": ["apps"],
        "apiVersions": ["v1"],
        "resources": ["deployments", "statefulsets", "daemonsets", "replicasets"],
        "operations": ["CREATE", "UPDATE"],
    },
    {
        "apiGroups": ["batch"],
        "apiVersions": ["v1"],
        "resources": ["jobs", "cronjobs"],
        "operations": ["CREATE", "UPDATE"],
    },
]
# The pod spec of a Pod, a CronJob or any other workload, and all its containers.
_POD_VARIABLES = [
    {
        "name": "podSpec",
        "expression": (
            "object.kind == 'Pod' ? object.spec : "
            "(object.kind == 'CronJob' ? object.spec.jobTemplate.spec.template.spec "
            ": object.spec.template.spec)"
        ),
    },
    {
        "name": "containers",
        "expression": (
            "variables.podSpec.containers + (has(variables.podSpec.initContainers) "
            "? variables.podSpec.initContainers : [])"
        ),
    },
]
_POD_NON_ROOT = (
    "has(variables.podSpec.securityContext) "
    "&& has(variables.podSpec.securityContext.runAsNonRoot) "
    "&& variables.podSpec.securityContext.runAsNonRoot == true"
)
SECRET_NAME_PATTERN = (
    "(?i)(password|passwd|secret|token|credential|private_?key|api_?key|access_?key)"
)
REFERENCE_NAME_PATTERN = "(?i)_(file|dir|path)$"


def _policy(name: str, rules: list[dict[str, Any]], spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicy",
        "metadata": {"name": POLICY_PREFIX + name, "labels": dict(LABELS)},
        "spec": {
            "failurePolicy": "Fail",
            "matchConstraints": {"resourceRules": rules},
            **spec,
        },
    }


def _validation(expression: str, message: str) -> dict[str, str]:
    return {"expression": expression, "message": message, "reason": "Forbidden"}


def admission_policies() -> list[dict[str, Any]]:
    """The ValidatingAdmissionPolicies (cluster-scoped; they act only where bound)."""
    non_root = _policy(
        "non-root",
        _POD_RULES,
        {
            "variables": _POD_VARIABLES,
            "validations": [
                _validation(
                    "variables.containers.all(c, (has(c.securityContext) "
                    "&& has(c.securityContext.runAsNonRoot)) ? c.securityContext.runAsNonRoot "
                    f"== true : ({_POD_NON_ROOT}))",
                    "every container must run as non-root: set securityContext.runAsNonRoot: "
                    "true on the pod or the container",
                ),
                _validation(
                    "!(has(variables.podSpec.securityContext) "
                    "&& has(variables.podSpec.securityContext.runAsUser) "
                    "&& variables.podSpec.securityContext.runAsUser == 0) "
                    "&& variables.containers.all(c, !(has(c.securityContext) "
                    "&& has(c.securityContext.runAsUser) && c.securityContext.runAsUser == 0))",
                    "no pod or container may run as UID 0",
                ),
                _validation(
                    "variables.containers.all(c, has(c.securityContext) "
                    "&& has(c.securityContext.allowPrivilegeEscalation) "
                    "&& c.securityContext.allowPrivilegeEscalation == false "
                    "&& !(has(c.securityContext.privileged) && c.securityContext.privileged))",
                    "every container must set securityContext.allowPrivilegeEscalation: false "
                    "and must not be privileged",
                ),
            ],
        },
    )
    limits = _policy(
        "resource-limits",
        _POD_RULES,
        {
            "variables": _POD_VARIABLES,
            "validations": [
                _validation(
                    "variables.containers.all(c, has(c.resources) && has(c.resources.requests) "
                    "&& has(c.resources.limits) && ['cpu', 'memory'].all(r, "
                    "r in c.resources.requests && r in c.resources.limits))",
                    "every container must set resources.requests and resources.limits for "
                    "cpu and memory",
                ),
            ],
        },
    )
    secrets = _policy(
        "no-plaintext-secrets",
        _POD_RULES,
        {
            "variables": _POD_VARIABLES,
            "validations": [
                _validation(
                    "variables.containers.all(c, !has(c.env) || c.env.all(e, !has(e.value) "
                    f"|| !e.name.matches('{SECRET_NAME_PATTERN}') "
                    f"|| e.name.matches('{REFERENCE_NAME_PATTERN}')))",
                    "a secret must not be written into the pod spec: take passwords, tokens "
                    "and keys from valueFrom.secretKeyRef or a mounted Secret file",
                ),
            ],
        },
    )
    network = _policy(
        "default-deny",
        [
            {
                "apiGroups": ["networking.k8s.io"],
                "apiVersions": ["v1"],
                "resources": ["networkpolicies"],
                "operations": ["CREATE", "UPDATE"],
            }
        ],
        {
            "validations": [
                _validation(
                    f"object.metadata.name != '{DEFAULT_DENY}' || ("
                    "!has(object.spec.podSelector.matchLabels) "
                    "&& !has(object.spec.podSelector.matchExpressions) "
                    "&& has(object.spec.policyTypes) "
                    "&& 'Ingress' in object.spec.policyTypes "
                    "&& 'Egress' in object.spec.policyTypes "
                    "&& (!has(object.spec.ingress) || size(object.spec.ingress) == 0) "
                    "&& (!has(object.spec.egress) || size(object.spec.egress) == 0))",
                    f"the NetworkPolicy {DEFAULT_DENY} must select every pod (podSelector: {{}}) "
                    "and deny all ingress and egress",
                ),
                _validation(
                    "(!has(object.spec.ingress) || object.spec.ingress.all(r, "
                    "has(r.from) && size(r.from) > 0)) "
                    "&& (!has(object.spec.egress) || object.spec.egress.all(r, "
                    "(has(r.to) && size(r.to) > 0) || (has(r.ports) && size(r.ports) > 0)))",
                    "a NetworkPolicy rule must name its peers: every ingress rule needs `from`, "
                    "every egress rule `to` or `ports`",
                ),
            ],
        },
    )
    return [non_root, limits, secrets, network]


def admission_bindings(namespaces: list[str]) -> list[dict[str, Any]]:
    """One binding per policy: Deny in the given namespaces (matched by their name label,
    which the API server sets on every namespace)."""
    if not namespaces:
        raise ValueError("bind the admission policies to at least one namespace")
    return [
        {
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "ValidatingAdmissionPolicyBinding",
            "metadata": {"name": policy["metadata"]["name"], "labels": dict(LABELS)},
            "spec": {
                "policyName": policy["metadata"]["name"],
                "validationActions": ["Deny"],
                "matchResources": {
                    "namespaceSelector": {
                        "matchExpressions": [
                            {
                                "key": "kubernetes.io/metadata.name",
                                "operator": "In",
                                "values": sorted(namespaces),
                            }
                        ]
                    }
                },
            },
        }
        for policy in admission_policies()
    ]


def default_deny(namespace: str) -> dict[str, Any]:
    """The NetworkPolicy every namespace starts with: all pods, nothing allowed."""
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": DEFAULT_DENY, "namespace": namespace, "labels": dict(LABELS)},
        "spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]},
    }
