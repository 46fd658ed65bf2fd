"""The admission policies of admission.py on the API server, bound to the namespaces where
only fraudwatch's own pods run. Workloads depend on the bindings, so no pod of theirs is
admitted before the policies are in force."""

from __future__ import annotations

import pulumi
import pulumi_kubernetes as k8s

from .admission import admission_bindings, admission_policies


class AdmissionPolicies(pulumi.ComponentResource):
    """ValidatingAdmissionPolicies and their bindings (cluster-scoped)."""

    def __init__(
        self, name: str, namespaces: list[str], opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("fraudwatch:platform:AdmissionPolicies", name, None, opts)
        policies = {
            p["metadata"]["name"]: k8s.admissionregistration.v1.ValidatingAdmissionPolicy(
                p["metadata"]["name"],
                metadata=p["metadata"],
                spec=p["spec"],
                opts=pulumi.ResourceOptions(parent=self),
            )
            for p in admission_policies()
        }
        self.bindings = [
            k8s.admissionregistration.v1.ValidatingAdmissionPolicyBinding(
                f"{b['metadata']['name']}-binding",
                metadata=b["metadata"],
                spec=b["spec"],
                opts=pulumi.ResourceOptions(
                    parent=self, depends_on=[policies[b["spec"]["policyName"]]]
                ),
            )
            for b in admission_bindings(namespaces)
        ]
        self.register_outputs({"policies": sorted(policies)})
