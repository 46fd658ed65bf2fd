"""Security contexts and resources for every pod the program declares or a chart it installs
runs: non-root always; for our own pods also no privilege escalation, no Linux capabilities,
RuntimeDefault seccomp and a read-only root file system (the `restricted` standard)."""

from __future__ import annotations

from typing import Any

# A UID outside the range most base images give to real users.
NON_ROOT_UID = 10001


def security_context(
    uid: int | None = None,
    *,
    gid: int | None = None,
    fs_group: int | None = None,
    no_escalation: bool = False,
    unprivileged: bool = False,
    read_only_root: bool | None = None,
    drop_all: bool = False,
    seccomp: bool = False,
) -> dict[str, Any]:
    """A pod or container security context: `runAsNonRoot: true` and what is asked for. A
    setting not asked for is left out (a chart's own default then applies)."""
    context: dict[str, Any] = {"runAsNonRoot": True}
    if uid is not None:
        context["runAsUser"] = uid
    if gid is not None:
        context["runAsGroup"] = gid
    if fs_group is not None:
        context["fsGroup"] = fs_group
    if no_escalation:
        context["allowPrivilegeEscalation"] = False
    if unprivileged:
        context["privileged"] = False
    if read_only_root is not None:
        context["readOnlyRootFilesystem"] = read_only_root
    if drop_all:
        context["capabilities"] = {"drop": ["ALL"]}
    if seccomp:
        context["seccompProfile"] = {"type": "RuntimeDefault"}
    return context


def pod_security_context(uid: int = NON_ROOT_UID) -> dict[str, Any]:
    """PodSecurityContext meeting the `restricted` Pod Security Standard."""
    return security_context(uid, gid=uid, fs_group=uid, seccomp=True)


def container_security_context(
    uid: int = NON_ROOT_UID, *, read_only_root: bool = True
) -> dict[str, Any]:
    """SecurityContext meeting the `restricted` Pod Security Standard."""
    return security_context(
        uid,
        gid=uid,
        no_escalation=True,
        unprivileged=True,
        read_only_root=read_only_root,
        drop_all=True,
        seccomp=True,
    )


def chart_container_context(
    uid: int | None = None, *, read_only_root: bool | None = None, seccomp: bool = False
) -> dict[str, Any]:
    """The container context given to a third-party chart or operator: non-root, no privilege
    escalation, no capabilities; the image's own user unless `uid` is given."""
    return security_context(
        uid, no_escalation=True, read_only_root=read_only_root, drop_all=True, seccomp=seccomp
    )


def resources(cpu: str, memory: str, cpu_limit: str | None = None) -> dict[str, Any]:
    """Requests and limits; memory limit equals the request so the pod is never OOM-surprised."""
    return {
        "requests": {"cpu": cpu, "memory": memory},
        "limits": {"cpu": cpu_limit or cpu, "memory": memory},
    }
