"""Security contexts every pod the program declares gets: non-root, no privilege escalation,
no Linux capabilities, RuntimeDefault seccomp and a read-only root file system."""

from __future__ import annotations

from typing import Any

# A UID outside the range most base images give to real users.
NON_ROOT_UID = 10001


def pod_security_context(uid: int = NON_ROOT_UID) -> dict[str, Any]:
    """PodSecurityContext meeting the `restricted` Pod Security Standard."""
    return {
        "runAsNonRoot": True,
        "runAsUser": uid,
        "runAsGroup": uid,
        "fsGroup": uid,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def container_security_context(uid: int = NON_ROOT_UID) -> dict[str, Any]:
    """SecurityContext meeting the `restricted` Pod Security Standard."""
    return {
        "runAsNonRoot": True,
        "runAsUser": uid,
        "runAsGroup": uid,
        "allowPrivilegeEscalation": False,
        "privileged": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def resources(cpu: str, memory: str, cpu_limit: str | None = None) -> dict[str, Any]:
    """Requests and limits; memory limit equals the request so the pod is never OOM-surprised."""
    return {
        "requests": {"cpu": cpu, "memory": memory},
        "limits": {"cpu": cpu_limit or cpu, "memory": memory},
    }
