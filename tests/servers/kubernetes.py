"""A real Kubernetes control plane on 127.0.0.1: etcd (Debian's etcd-server) and kube-apiserver,
optionally (`simulated_nodes=N`) with kube-controller-manager, kube-scheduler and kwok running N
simulated nodes, so Deployments, StatefulSets and Jobs roll out: pods are scheduled, kwok marks
them Running and Ready (Job pods then Succeeded), and deleted pods go away. No container runs.

The binaries come from the shared Kubernetes kit (`$FRAUDWATCH_K8S_KIT`, else
`../shared/k8s` from the repository root): its `bin/*.xz` are checked against the kit's
SHA256SUMS, unpacked into `.cache/k8s/bin` and checked again. Where the kit is absent (no kit
folder, or no `bin/NAME.xz` in it) the binary is built from the Go module proxy by the kit's
recipe instead (tests/servers/kubernetes_build.py, into the user cache; minutes the first
time, nothing after). A kit that is there but does not match its checksums is an error.

Everything listens on 127.0.0.1 on free ports chosen at start; TLS with a self-signed serving
certificate (SAN IP:127.0.0.1), a bearer token in group system:masters, RBAC authorization,
PodSecurity and ValidatingAdmissionPolicy admission on (the API server's defaults).

    python -m tests.servers.kubernetes up [--state-dir DIR] [--nodes N]  # prints the kubeconfig path
    python -m tests.servers.kubernetes down [--state-dir DIR]

`start(state_dir)` returns a `ControlPlane` (URL, token, CA file, kubeconfig path); `stop()`
stops only the PIDs recorded in state_dir.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import lzma
import os
import secrets
import shutil
import socket
import ssl
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from tests.servers import REPO_ROOT, default_state_dir, kubernetes_build
from tests.servers.process_control import (
    ServerStartError,
    run_checked,
    spawn,
    stop_pid,
    wait_until,
    write_pid,
)

KIT_VARIABLE = "FRAUDWATCH_K8S_KIT"
BIN_CACHE = REPO_ROOT / ".cache" / "k8s" / "bin"
ETCD_START_TIMEOUT_S = 30.0
APISERVER_START_TIMEOUT_S = 90.0
CONTROLLERS_START_TIMEOUT_S = 90.0
NODE_READY_TIMEOUT_S = 120.0
# Stop order: the node simulator and controllers, then the API server, then its storage.
PROCESSES = ("kwok", "kube-scheduler", "kube-controller-manager", "kube-apiserver", "etcd")
# Annotation kwok looks for on the Node objects it simulates.
KWOK_NODE_ANNOTATION = "kwok.x-k8s.io/node"
SIMULATED_NODE_PREFIX = "fraudwatch-sim"

# kwok's behaviour, written for this project (kwok.x-k8s.io/v1alpha1 Stage documents): a node
# turns Ready and keeps heartbeating; a scheduled pod gets an IP and turns Running and Ready; a
# pod owned by a Job completes at once (in one step: a second status change of the same pod
# can wait for a resync, as etcd 3.4 gives kwok no watch progress notifications); a pod being
# deleted loses its finalizers and is removed.
_CONDITIONS = """
      conditions:
      - {type: Ready, status: "True", reason: KubeletReady, message: simulated by kwok,
         lastHeartbeatTime: "{{ Now }}", lastTransitionTime: "{{ Now }}"}
      - {type: MemoryPressure, status: "False", reason: KubeletHasSufficientMemory,
         lastHeartbeatTime: "{{ Now }}", lastTransitionTime: "{{ Now }}"}
      - {type: DiskPressure, status: "False", reason: KubeletHasNoDiskPressure,
         lastHeartbeatTime: "{{ Now }}", lastTransitionTime: "{{ Now }}"}
      - {type: PIDPressure, status: "False", reason: KubeletHasSufficientPID,
         lastHeartbeatTime: "{{ Now }}", lastTransitionTime: "{{ Now }}"}
      - {type: NetworkUnavailable, status: "False", reason: RouteCreated,
         lastHeartbeatTime: "{{ Now }}", lastTransitionTime: "{{ Now }}"}"""
KWOK_STAGES = (
    """apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata: {name: fraudwatch-node-ready}
spec:
  resourceRef: {apiGroup: v1, kind: Node}
  selector:
    matchExpressions:
    - {key: .status.phase, operator: NotIn, values: [Running]}
  next:
    statusTemplate: |
      phase: Running
      addresses:
      - {type: InternalIP, address: "{{ NodeIP }}"}
      capacity: {cpu: "64", memory: 256Gi, pods: "500", ephemeral-storage: 1Ti}
      allocatable: {cpu: "64", memory: 256Gi, pods: "500", ephemeral-storage: 1Ti}
      nodeInfo:
        architecture: amd64
        operatingSystem: linux
        kubeletVersion: kwok
        kubeProxyVersion: kwok
        containerRuntimeVersion: kwok
        kernelVersion: kwok
        osImage: kwok
        machineID: ""
        systemUUID: ""
        bootID: ""
"""
    + _CONDITIONS.lstrip("\n")
    + """
---
apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata: {name: fraudwatch-node-heartbeat}
spec:
  resourceRef: {apiGroup: v1, kind: Node}
  selector:
    matchExpressions:
    - {key: .status.phase, operator: In, values: [Running]}
  delay: {durationMilliseconds: 15000, jitterDurationMilliseconds: 20000}
  next:
    statusTemplate: |
"""
    + _CONDITIONS.lstrip("\n")
    + """
---
apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata: {name: fraudwatch-pod-ready}
spec:
  resourceRef: {apiGroup: v1, kind: Pod}
  selector:
    matchExpressions:
    - {key: .metadata.deletionTimestamp, operator: DoesNotExist}
    - {key: .status.podIP, operator: DoesNotExist}
    - {key: ".metadata.ownerReferences.[].kind", operator: NotIn, values: [Job]}
  next:
    statusTemplate: |
      phase: Running
      startTime: "{{ Now }}"
      hostIP: "{{ NodeIPWith .spec.nodeName }}"
      podIP: "{{ PodIPWith .spec.nodeName ( or .spec.hostNetwork false ) ( or .metadata.uid "" ) ( or .metadata.name "" ) ( or .metadata.namespace "" ) }}"
      conditions:
      - {type: Initialized, status: "True", lastTransitionTime: "{{ Now }}"}
      - {type: ContainersReady, status: "True", lastTransitionTime: "{{ Now }}"}
      - {type: Ready, status: "True", lastTransitionTime: "{{ Now }}"}
      - {type: PodScheduled, status: "True", lastTransitionTime: "{{ Now }}"}
      initContainerStatuses:
      {{ range .spec.initContainers }}
      - name: "{{ .name }}"
        image: "{{ .image }}"
        ready: true
        restartCount: 0
        state: {terminated: {exitCode: 0, reason: Completed, finishedAt: "{{ Now }}"}}
      {{ end }}
      containerStatuses:
      {{ range .spec.containers }}
      - name: "{{ .name }}"
        image: "{{ .image }}"
        ready: true
        started: true
        restartCount: 0
        state: {running: {startedAt: "{{ Now }}"}}
      {{ end }}
---
apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata: {name: fraudwatch-job-pod-complete}
spec:
  resourceRef: {apiGroup: v1, kind: Pod}
  selector:
    matchExpressions:
    - {key: .metadata.deletionTimestamp, operator: DoesNotExist}
    - {key: .status.podIP, operator: DoesNotExist}
    - {key: ".metadata.ownerReferences.[].kind", operator: In, values: [Job]}
  next:
    statusTemplate: |
      phase: Succeeded
      startTime: "{{ Now }}"
      hostIP: "{{ NodeIPWith .spec.nodeName }}"
      podIP: "{{ PodIPWith .spec.nodeName ( or .spec.hostNetwork false ) ( or .metadata.uid "" ) ( or .metadata.name "" ) ( or .metadata.namespace "" ) }}"
      conditions:
      - {type: Initialized, status: "True", lastTransitionTime: "{{ Now }}"}
      - {type: ContainersReady, status: "False", reason: PodCompleted, lastTransitionTime: "{{ Now }}"}
      - {type: Ready, status: "False", reason: PodCompleted, lastTransitionTime: "{{ Now }}"}
      - {type: PodScheduled, status: "True", lastTransitionTime: "{{ Now }}"}
      containerStatuses:
      {{ range .spec.containers }}
      - name: "{{ .name }}"
        image: "{{ .image }}"
        ready: false
        started: false
        restartCount: 0
        state: {terminated: {exitCode: 0, reason: Completed, finishedAt: "{{ Now }}"}}
      {{ end }}
---
apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata: {name: fraudwatch-pod-delete}
spec:
  resourceRef: {apiGroup: v1, kind: Pod}
  selector:
    matchExpressions:
    - {key: .metadata.deletionTimestamp, operator: Exists}
  next:
    finalizers: {empty: true}
    delete: true
"""
)


def kit_dir() -> Path:
    configured = os.environ.get(KIT_VARIABLE)
    return Path(configured) if configured else REPO_ROOT.parent / "shared" / "k8s"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _checksums(bin_dir: Path) -> dict[str, str]:
    sums = {}
    for line in (bin_dir / "SHA256SUMS").read_text().splitlines():
        if line.strip():
            digest, name = line.split(maxsplit=1)
            sums[name.strip().lstrip("*")] = digest
    return sums


def binary(name: str) -> Path:
    """`name` (kube-apiserver, pulumi, ...) from the kit, checksum-verified, unpacked into
    .cache/k8s/bin; where the kit has no `bin/NAME.xz`, built from the Go module proxy
    (kubernetes_build). Raises ServerStartError saying what was tried."""
    source_dir = kit_dir() / "bin"
    packed = source_dir / f"{name}.xz"
    if not packed.is_file():
        return _built(name, packed)
    if not (source_dir / "SHA256SUMS").is_file():
        raise ServerStartError(f"{name}: {packed} is there but {source_dir}/SHA256SUMS is not")
    sums = _checksums(source_dir)
    if name not in sums or f"{name}.xz" not in sums:
        raise ServerStartError(f"{name}: no checksum for it in {source_dir / 'SHA256SUMS'}")
    target = BIN_CACHE / name
    if target.is_file() and _sha256(target) == sums[name]:
        return target
    if _sha256(packed) != sums[f"{name}.xz"]:
        raise ServerStartError(f"{name}: {packed} does not match its SHA256SUMS entry")
    BIN_CACHE.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".partial")
    with lzma.open(packed) as src, partial.open("wb") as dst:
        shutil.copyfileobj(src, dst, 1 << 20)
    if _sha256(partial) != sums[name]:
        partial.unlink()
        raise ServerStartError(f"{name}: unpacked binary does not match SHA256SUMS")
    partial.chmod(0o755)
    partial.replace(target)
    return target


def _built(name: str, packed: Path) -> Path:
    """The kit has no `name`: build it by the kit's recipe (or reuse an earlier build)."""
    out_dir = kubernetes_build.default_out_dir()
    try:
        return kubernetes_build.build(name, out_dir)
    except kubernetes_build.BuildError as error:
        raise ServerStartError(
            f"{name}: not in the Kubernetes kit ({packed} not found; set {KIT_VARIABLE} to the "
            f"kit holding crds/, charts/, bin/), and building it from the Go module proxy into "
            f"{out_dir} failed: {error}"
        ) from error


def etcd_binary() -> str:
    found = shutil.which("etcd")
    if not found:
        raise ServerStartError(
            "etcd is not installed: apt-get install etcd-server (Debian's etcd 3.4 works with "
            "this API server)"
        )
    return found


def local_env() -> dict[str, str]:
    """The environment without proxy settings: everything here talks to 127.0.0.1 (and the
    API server must never send a webhook or service call through a proxy)."""
    return {
        k: v
        for k, v in os.environ.items()
        if k.lower() not in ("http_proxy", "https_proxy", "all_proxy", "no_proxy")
    }


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class ControlPlane:
    url: str
    token: str
    ca_file: Path
    kubeconfig: Path
    state_dir: Path

    def ssl_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca_file))


def _certificates(home: Path) -> tuple[Path, Path, Path]:
    """A self-signed serving certificate for 127.0.0.1 and the service-account key pair."""
    cert, key, sa_key = home / "apiserver.crt", home / "apiserver.key", home / "sa.key"
    run_checked(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=kube-apiserver",
            "-addext",
            "subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes.default.svc",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        what="openssl (serving certificate)",
    )
    run_checked(["openssl", "genrsa", "-out", str(sa_key), "2048"], what="openssl (SA key)")
    for path in (key, sa_key):
        path.chmod(0o600)
    return cert, key, sa_key


def _kubeconfig(path: Path, server: str, token: str, ca_file: Path) -> None:
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "fraudwatch-test",
                "cluster": {
                    "server": server,
                    "certificate-authority-data": base64.b64encode(ca_file.read_bytes()).decode(),
                },
            }
        ],
        "users": [{"name": "admin", "user": {"token": token}}],
        "contexts": [
            {"name": "fraudwatch-test", "context": {"cluster": "fraudwatch-test", "user": "admin"}}
        ],
        "current-context": "fraudwatch-test",
    }
    path.write_text(json.dumps(config, indent=2))  # JSON is YAML: every client reads it
    path.chmod(0o600)


def _get(url: str, token: str | None = None, context: ssl.SSLContext | None = None) -> int:
    request = urllib.request.Request(url)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=5, context=context) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)


def _request(
    url: str, token: str, context: ssl.SSLContext, method: str = "GET", body: object = None
) -> dict:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method)
    request.add_header("Authorization", f"Bearer {token}")
    request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=30, context=context) as response:
        return json.loads(response.read().decode() or "{}")


def _insecure_context() -> ssl.SSLContext:
    """For the health endpoints of the controllers' self-signed serving certificates only."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def _start_controllers(
    state_dir: Path, home: Path, plane: ControlPlane, sa_key: Path, nodes: int
) -> None:
    """kube-controller-manager, kube-scheduler and kwok with `nodes` simulated nodes; return
    when every node is Ready."""
    kubeconfig = str(plane.kubeconfig)
    common = [
        f"--kubeconfig={kubeconfig}",
        f"--authentication-kubeconfig={kubeconfig}",
        f"--authorization-kubeconfig={kubeconfig}",
        "--leader-elect=false",
        "--bind-address=127.0.0.1",
    ]
    insecure = _insecure_context()
    for name, extra in (
        (
            "kube-controller-manager",
            [
                f"--service-account-private-key-file={sa_key}",
                f"--root-ca-file={plane.ca_file}",
                "--use-service-account-credentials=false",
                "--controllers=*",
            ],
        ),
        ("kube-scheduler", []),
    ):
        port = free_port()
        log = home / f"{name}.log"
        process = spawn(
            [
                str(binary(name)),
                *common,
                f"--secure-port={port}",
                f"--cert-dir={home / (name + '-certs')}",
                *extra,
            ],
            log,
            env=local_env(),
        )
        write_pid(state_dir, name, process.pid)
        wait_until(
            lambda port=port: _get(f"https://127.0.0.1:{port}/healthz", None, insecure) == 200,
            what=name,
            process=process,
            log_path=log,
            timeout=CONTROLLERS_START_TIMEOUT_S,
        )

    stages = home / "kwok-stages.yaml"
    stages.write_text(KWOK_STAGES)
    kwok_port = free_port()
    kwok_log = home / "kwok.log"
    kwok = spawn(
        [
            str(binary("kwok")),
            f"--kubeconfig={kubeconfig}",
            f"--config={stages}",
            f"--manage-nodes-with-annotation-selector={KWOK_NODE_ANNOTATION}=fake",
            f"--server-address=127.0.0.1:{kwok_port}",
            "--node-ip=127.0.0.1",
            "--node-lease-duration-seconds=40",
        ],
        kwok_log,
        env=local_env(),
    )
    write_pid(state_dir, "kwok", kwok.pid)
    context = plane.ssl_context()
    names = [f"{SIMULATED_NODE_PREFIX}-{i}" for i in range(nodes)]
    for node_name in names:
        _request(
            f"{plane.url}/api/v1/nodes",
            plane.token,
            context,
            "POST",
            {
                "apiVersion": "v1",
                "kind": "Node",
                "metadata": {
                    "name": node_name,
                    "annotations": {KWOK_NODE_ANNOTATION: "fake"},
                    "labels": {
                        "kubernetes.io/hostname": node_name,
                        "kubernetes.io/os": "linux",
                        "kubernetes.io/arch": "amd64",
                        "type": "kwok",
                    },
                },
            },
        )

    def all_ready() -> bool:
        for node_name in names:
            node = _request(f"{plane.url}/api/v1/nodes/{node_name}", plane.token, context)
            conditions = {
                c["type"]: c["status"] for c in node.get("status", {}).get("conditions", [])
            }
            taints = [t["key"] for t in node.get("spec", {}).get("taints", []) or []]
            if conditions.get("Ready") != "True" or taints:
                return False
        return True

    wait_until(
        all_ready,
        what=f"{nodes} kwok nodes Ready and untainted",
        process=kwok,
        log_path=kwok_log,
        timeout=NODE_READY_TIMEOUT_S,
    )


def start(
    state_dir: Path, *, simulated_nodes: int = 0, admission_webhooks: bool = True
) -> ControlPlane:
    """Start etcd and kube-apiserver; return when /readyz answers ok. With
    `simulated_nodes` > 0 also the controllers, the scheduler and kwok, returning when that
    many simulated nodes are Ready. `admission_webhooks=False` turns the API server's
    webhook admission plugins off: webhook configurations are stored but never called (for
    operators whose webhook server never runs here; ValidatingAdmissionPolicies still apply)."""
    disabled_plugins = [
        # Without the controllers no ServiceAccount controller creates `default`: the plugin
        # would refuse every pod. With them (simulated nodes) it runs as on a cluster.
        *([] if simulated_nodes else ["ServiceAccount"]),
        *([] if admission_webhooks else ["ValidatingAdmissionWebhook", "MutatingAdmissionWebhook"]),
    ]
    apiserver = binary("kube-apiserver")
    etcd = etcd_binary()
    home = state_dir / "kubernetes"
    if home.exists():
        stop(state_dir)
        shutil.rmtree(home)
    home.mkdir(parents=True)
    cert, key, sa_key = _certificates(home)
    token = secrets.token_hex(24)
    tokens = home / "tokens.csv"
    tokens.write_text(f'{token},admin,admin-uid,"system:masters"\n')
    tokens.chmod(0o600)

    etcd_port, etcd_peer_port, api_port = free_port(), free_port(), free_port()
    etcd_url = f"http://127.0.0.1:{etcd_port}"
    etcd_log = home / "etcd.log"
    etcd_process = spawn(
        [
            etcd,
            "--name=fraudwatch-test",
            f"--data-dir={home / 'etcd'}",
            f"--listen-client-urls={etcd_url}",
            f"--advertise-client-urls={etcd_url}",
            f"--listen-peer-urls=http://127.0.0.1:{etcd_peer_port}",
            f"--initial-advertise-peer-urls=http://127.0.0.1:{etcd_peer_port}",
            f"--initial-cluster=fraudwatch-test=http://127.0.0.1:{etcd_peer_port}",
            "--quota-backend-bytes=2147483648",
            "--unsafe-no-fsync",
        ],
        etcd_log,
        env=local_env(),
    )
    write_pid(state_dir, "etcd", etcd_process.pid)
    wait_until(
        lambda: _get(f"{etcd_url}/health") == 200,
        what="etcd",
        process=etcd_process,
        log_path=etcd_log,
        timeout=ETCD_START_TIMEOUT_S,
    )

    server = f"https://127.0.0.1:{api_port}"
    api_log = home / "kube-apiserver.log"
    api_process = spawn(
        [
            str(apiserver),
            f"--etcd-servers={etcd_url}",
            "--bind-address=127.0.0.1",
            "--advertise-address=127.0.0.1",
            f"--secure-port={api_port}",
            f"--tls-cert-file={cert}",
            f"--tls-private-key-file={key}",
            f"--token-auth-file={tokens}",
            "--authorization-mode=RBAC",
            f"--service-account-issuer={server}",
            f"--service-account-key-file={sa_key}",
            f"--service-account-signing-key-file={sa_key}",
            "--service-cluster-ip-range=10.96.0.0/24",
            "--endpoint-reconciler-type=none",
            "--profiling=false",
            # As on a real cluster (Ceph's OSDs need it): the policies, not this flag, decide.
            "--allow-privileged=true",
            *(
                [f"--disable-admission-plugins={','.join(disabled_plugins)}"]
                if disabled_plugins
                else []
            ),
        ],
        api_log,
        env=local_env(),
    )
    write_pid(state_dir, "kube-apiserver", api_process.pid)
    context = ssl.create_default_context(cafile=str(cert))
    wait_until(
        lambda: _get(f"{server}/readyz", token, context) == 200,
        what="kube-apiserver",
        process=api_process,
        log_path=api_log,
        timeout=APISERVER_START_TIMEOUT_S,
    )
    kubeconfig = home / "kubeconfig"
    _kubeconfig(kubeconfig, server, token, cert)
    plane = ControlPlane(server, token, cert, kubeconfig, state_dir)
    (home / "control-plane.json").write_text(
        json.dumps({"url": server, "kubeconfig": str(kubeconfig), "ca_file": str(cert)})
    )
    if simulated_nodes:
        _start_controllers(state_dir, home, plane, sa_key, simulated_nodes)
    return plane


def stop(state_dir: Path) -> None:
    """Stop the API server, then etcd: only the PIDs this state directory recorded."""
    marker = str(state_dir / "kubernetes")
    for name in PROCESSES:
        stop_pid(state_dir, name, marker=marker)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.servers.kubernetes")
    parser.add_argument("command", choices=("up", "down"))
    parser.add_argument("--state-dir", type=Path, default=None)
    parser.add_argument(
        "--nodes",
        type=int,
        default=0,
        help="also run the controllers, the scheduler and kwok with this many simulated nodes",
    )
    args = parser.parse_args(argv)
    state_dir = (args.state_dir or default_state_dir()).resolve()
    state_dir.mkdir(parents=True, exist_ok=True)
    if args.command == "down":
        stop(state_dir)
        print("kubernetes: stopped")
        return 0
    try:
        plane = start(state_dir, simulated_nodes=args.nodes)
    except ServerStartError as error:
        print(f"kubernetes: failed to start: {error}", file=sys.stderr)
        return 1
    print(f"kubernetes: {plane.url}; export KUBECONFIG={plane.kubeconfig}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
