"""Build the Kubernetes test binaries from the Go module proxy, for when the shared kit is absent.

The six binaries of the kit's `bin/` (kube-apiserver, kube-controller-manager, kube-scheduler,
kwok, pulumi, pulumi-resource-kubernetes), built the way the kit's README ("Recipes") says they
were: the three control-plane commands from k8s.io/kubernetes in a scratch module whose 31
staging modules are replaced by their published versions; kwok with `go install`; the Pulumi CLI
from a scratch module requiring pulumi/pkg/v3 with pkg's and sdk's non-local replaces copied;
the Kubernetes provider from a scratch module with its `go generate` step run in a copy of its
cmd directory. The version is embedded with the -ldflags the recipes give.

Where: scratch modules and binaries live under the user cache,
`$FRAUDWATCH_K8S_BUILD_CACHE`, else `$XDG_CACHE_HOME/fraudwatch/k8s-build`, else
`~/.cache/fraudwatch/k8s-build` (`src/` the scratch modules, `bin/` the binaries, each with a
`NAME.version` stamp), so CI can keep it between runs. Go's own module and build caches are
Go's (`go env GOMODCACHE GOCACHE`: about 3 GB and 4.5 GB for the control plane). A binary
whose stamp names the wanted version is not built again. Go runs under `nice -n 19` with the
environment's GOPROXY; output goes to a temporary name renamed into place.

Times on 2 shared cores: kwok a few minutes, each control-plane command about 7 min of CPU,
Pulumi about 20 min, the provider about 15 min.

    python -m tests.servers.kubernetes_build [NAME ...] [--out-dir DIR]   # all six by default
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import os
import resource
import shutil
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

CACHE_VARIABLE = "FRAUDWATCH_K8S_BUILD_CACHE"

KUBERNETES_VERSION = "v1.34.4"
STAGING_VERSION = "v0.34.4"
# The modules k8s.io/kubernetes v1.34.4's go.mod replaces with ./staging/src/k8s.io/NAME.
STAGING_MODULES = (
    "api",
    "apiextensions-apiserver",
    "apimachinery",
    "apiserver",
    "cli-runtime",
    "client-go",
    "cloud-provider",
    "cluster-bootstrap",
    "code-generator",
    "component-base",
    "component-helpers",
    "controller-manager",
    "cri-api",
    "cri-client",
    "csi-translation-lib",
    "dynamic-resource-allocation",
    "endpointslice",
    "externaljwt",
    "kms",
    "kube-aggregator",
    "kube-controller-manager",
    "kube-proxy",
    "kube-scheduler",
    "kubectl",
    "kubelet",
    "metrics",
    "mount-utils",
    "pod-security-admission",
    "sample-apiserver",
    "sample-cli-plugin",
    "sample-controller",
)
KUBERNETES_COMMANDS = ("kube-apiserver", "kube-controller-manager", "kube-scheduler")
KWOK_VERSION = "v0.8.0"
PULUMI_VERSION = "v3.276.0"
PROVIDER_VERSION = "4.25.0"
# The provider module is not tagged per release: 4.25.0 is this pseudo-version of provider/v4.
PROVIDER_MODULE_VERSION = "v4.0.0-20260115033456-f47bc2d6f199"

PULUMI_PKG = "github.com/pulumi/pulumi/pkg/v3"
PULUMI_SDK = "github.com/pulumi/pulumi/sdk/v3"
PROVIDER_MODULE = "github.com/pulumi/pulumi-kubernetes/provider/v4"
PROVIDER_SDK = "github.com/pulumi/pulumi-kubernetes/sdk/v4"
PROVIDER_CMD = "cmd/pulumi-resource-kubernetes"


@dataclass(frozen=True)
class Recipe:
    name: str
    version: str  # what `NAME --version` reports and the stamp records
    kind: str  # kubernetes | kwok | pulumi | provider


RECIPES: dict[str, Recipe] = {
    r.name: r
    for r in (
        Recipe("kube-apiserver", KUBERNETES_VERSION, "kubernetes"),
        Recipe("kube-controller-manager", KUBERNETES_VERSION, "kubernetes"),
        Recipe("kube-scheduler", KUBERNETES_VERSION, "kubernetes"),
        Recipe("kwok", KWOK_VERSION, "kwok"),
        Recipe("pulumi", PULUMI_VERSION, "pulumi"),
        Recipe("pulumi-resource-kubernetes", PROVIDER_VERSION, "provider"),
    )
}


class BuildError(RuntimeError):
    """A build step failed; the message names the binary, the step and the command."""


def build_root() -> Path:
    """The user-level cache holding the scratch modules (src/) and the binaries (bin/)."""
    configured = os.environ.get(CACHE_VARIABLE)
    if configured:
        return Path(configured)
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg) if xdg else Path.home() / ".cache"
    return base / "fraudwatch" / "k8s-build"


def default_out_dir() -> Path:
    return build_root() / "bin"


def version_of(name: str) -> str:
    return _recipe(name).version


def stamp_path(out_dir: Path, name: str) -> Path:
    return out_dir / f"{name}.version"


def is_built(name: str, out_dir: Path) -> bool:
    """True when out_dir holds `name` and its stamp names the version the recipe builds."""
    target, stamp = out_dir / name, stamp_path(out_dir, name)
    try:
        return target.is_file() and stamp.read_text().strip() == version_of(name)
    except FileNotFoundError:
        return False


def _recipe(name: str) -> Recipe:
    if name not in RECIPES:
        raise BuildError(f"no build recipe for {name!r}; known: {', '.join(RECIPES)}")
    return RECIPES[name]


def _say(message: str) -> None:
    print(f"[k8s-build] {message}", file=sys.stderr, flush=True)


def _go() -> str:
    found = shutil.which("go")
    if not found:
        raise BuildError(
            "the Go toolchain (`go`) is not on PATH: install Go to build the Kubernetes test "
            "binaries from the Go module proxy, or provide the shared Kubernetes kit"
        )
    return found


def _nice() -> list[str]:
    return ["nice", "-n", "19"] if shutil.which("nice") else []


class _Go:
    """Runs `go` under nice 19, printing each step and its time; the environment's GOPROXY,
    GOMODCACHE and GOCACHE are used as they are."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.go = _go()
        self.steps = 0

    def __call__(
        self,
        args: Sequence[str],
        *,
        cwd: Path,
        env: dict[str, str] | None = None,
        what: str,
        capture: bool = False,
    ) -> str:
        self.steps += 1
        command = [*_nice(), self.go, *args]
        shown = " ".join(["go", *args])
        if len(shown) > 300:
            shown = shown[:300] + " …"
        _say(f"{self.name}: step {self.steps} ({what}): {shown}")
        started = time.monotonic()
        result = subprocess.run(
            command,
            cwd=cwd,
            env={**os.environ, **(env or {})},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE if capture else None,
            stderr=None,
            text=True,
            check=False,
        )
        took = time.monotonic() - started
        if result.returncode != 0:
            raise BuildError(
                f"{self.name}: {what} failed (exit {result.returncode}) after {took:.0f} s: "
                f"{shown} (in {cwd})"
            )
        _say(f"{self.name}: step {self.steps} done in {took:.0f} s")
        return result.stdout or ""


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive lock on `path` (two test sessions may ask for a build at once)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _ldflags(*pairs: tuple[str, str], strip: bool = True) -> str:
    flags = ["-s", "-w"] if strip else []
    for variable, value in pairs:
        flags += ["-X", f"{variable}={value}"]
    return " ".join(flags)


def _kubernetes(go: _Go, name: str, partial: Path) -> None:
    """k8s.io/kubernetes/cmd/NAME at v1.34.4 with the staging modules replaced."""
    module = build_root() / "src" / f"kubernetes-{KUBERNETES_VERSION}"
    module.mkdir(parents=True, exist_ok=True)
    package = f"k8s.io/kubernetes/cmd/{name}"
    if not (module / "go.mod").is_file():
        go(["mod", "init", "fraudwatch.test/k8s-build"], cwd=module, what="scratch module")
        edits = [f"-replace=k8s.io/{m}=k8s.io/{m}@{STAGING_VERSION}" for m in STAGING_MODULES]
        go(["mod", "edit", *edits], cwd=module, what=f"{len(edits)} staging replaces")
    # `go mod tidy` keeps only what the module imports: a tools.go (never built) imports the
    # three commands, so tidy keeps k8s.io/kubernetes and every module they need.
    (module / "tools.go").write_text(
        "//go:build tools\n\npackage tools\n\nimport (\n"
        + "".join(f'\t_ "k8s.io/kubernetes/cmd/{c}"\n' for c in KUBERNETES_COMMANDS)
        + ")\n"
    )
    mod_flags = {"GOFLAGS": f"{os.environ.get('GOFLAGS', '')} -mod=mod".strip()}
    go(
        ["get", f"{package}@{KUBERNETES_VERSION}"],
        cwd=module,
        env=mod_flags,
        what="go get (downloads ~3 GB of modules the first time)",
    )
    go(["mod", "tidy", "-e"], cwd=module, env=mod_flags, what="go mod tidy")
    major, minor = KUBERNETES_VERSION.lstrip("v").split(".")[:2]
    ldflags = _ldflags(
        ("k8s.io/component-base/version.gitVersion", KUBERNETES_VERSION),
        ("k8s.io/component-base/version.gitMajor", major),
        ("k8s.io/component-base/version.gitMinor", minor),
    )
    go(
        ["build", "-trimpath", "-ldflags", ldflags, "-o", str(partial), package],
        cwd=module,
        what="go build (about 7 min of CPU)",
    )


def _kwok(go: _Go, name: str, partial: Path) -> None:
    """`go install sigs.k8s.io/kwok/cmd/kwok@v0.8.0` into a private GOBIN, then moved."""
    gobin = partial.parent / f".{name}.gobin"
    shutil.rmtree(gobin, ignore_errors=True)
    gobin.mkdir(parents=True)
    try:
        go(
            [
                "install",
                "-trimpath",
                "-ldflags",
                "-s -w",
                f"sigs.k8s.io/kwok/cmd/kwok@{KWOK_VERSION}",
            ],
            cwd=gobin,
            env={"GOBIN": str(gobin)},
            what="go install",
        )
        installed = gobin / "kwok"
        if not installed.is_file():
            raise BuildError(f"{name}: go install wrote no {installed}")
        installed.replace(partial)
    finally:
        shutil.rmtree(gobin, ignore_errors=True)


def _module_info(go: _Go, module: Path, path_at_version: str) -> dict:
    """`go mod download -json MODULE@VERSION`: where its source and go.mod are."""
    out = go(
        ["mod", "download", "-json", path_at_version],
        cwd=module,
        what=f"download {path_at_version}",
        capture=True,
    )
    return json.loads(out)


def _copied_replaces(go: _Go, module: Path, go_mod: str) -> list[str]:
    """The non-local replace directives of a dependency's go.mod, as `go mod edit` flags (a
    main module's replaces do not apply when it is a dependency: the scratch module must copy
    them)."""
    out = go(["mod", "edit", "-json", go_mod], cwd=module, what="read replaces", capture=True)
    flags = []
    for replace in json.loads(out).get("Replace") or []:
        old, new = replace["Old"], replace["New"]
        if not new.get("Version"):  # ./local or ../local paths
            continue
        left = old["Path"] + (f"@{old['Version']}" if old.get("Version") else "")
        flags.append(f"-replace={left}={new['Path']}@{new['Version']}")
    return flags


def _scratch(kind: str, version: str) -> Path:
    module = build_root() / "src" / f"{kind}-{version}"
    module.mkdir(parents=True, exist_ok=True)
    if not (module / "go.mod").is_file():
        (module / "go.mod").write_text(f"module fraudwatch.test/{kind}-build\n\ngo 1.24\n")
    return module


def _pulumi(go: _Go, name: str, partial: Path) -> None:
    """The Pulumi CLI v3.276.0: pkg/v3's cmd/pulumi in a scratch module with pkg's and sdk's
    non-local replaces copied and a tools.go importing the command."""
    module = _scratch("pulumi", PULUMI_VERSION)
    mod_flags = {"GOFLAGS": f"{os.environ.get('GOFLAGS', '')} -mod=mod".strip()}
    replaces = []
    for path in (PULUMI_PKG, PULUMI_SDK):
        info = _module_info(go, module, f"{path}@{PULUMI_VERSION}")
        replaces += _copied_replaces(go, module, info["GoMod"])
    go(
        [
            "mod",
            "edit",
            f"-require={PULUMI_PKG}@{PULUMI_VERSION}",
            f"-require={PULUMI_SDK}@{PULUMI_VERSION}",
            *replaces,
        ],
        cwd=module,
        what=f"requires and {len(replaces)} copied replaces",
    )
    (module / "tools.go").write_text(
        f'//go:build tools\n\npackage tools\n\nimport _ "{PULUMI_PKG}/cmd/pulumi"\n'
    )
    go(["mod", "tidy", "-e"], cwd=module, env=mod_flags, what="go mod tidy")
    ldflags = _ldflags(
        ("github.com/pulumi/pulumi/sdk/v3/go/common/version.Version", PULUMI_VERSION), strip=False
    )
    go(  # as the recipe: no -trimpath, symbols kept
        ["build", "-ldflags", ldflags, "-o", str(partial), f"{PULUMI_PKG}/cmd/pulumi"],
        cwd=module,
        env=mod_flags,
        what="go build (about 20 min on 2 busy cores)",
    )


def _provider(go: _Go, name: str, partial: Path) -> None:
    """pulumi-resource-kubernetes 4.25.0: the provider module's cmd directory copied into a
    scratch module, its schema generated (`VERSION=4.25.0 go run generate.go`), then built."""
    module = _scratch("pulumi-kubernetes", PROVIDER_VERSION)
    mod_flags = {"GOFLAGS": f"{os.environ.get('GOFLAGS', '')} -mod=mod".strip()}
    info = _module_info(go, module, f"{PROVIDER_MODULE}@{PROVIDER_MODULE_VERSION}")
    replaces = _copied_replaces(go, module, info["GoMod"])
    go(
        [
            "mod",
            "edit",
            f"-require={PROVIDER_MODULE}@{PROVIDER_MODULE_VERSION}",
            f"-require={PROVIDER_SDK}@v{PROVIDER_VERSION}",
            *replaces,
        ],
        cwd=module,
        what=f"requires and {len(replaces)} copied replaces",
    )
    command_dir = module / PROVIDER_CMD
    shutil.rmtree(command_dir, ignore_errors=True)
    shutil.copytree(Path(info["Dir"]) / PROVIDER_CMD, command_dir)
    for path in [command_dir, *command_dir.rglob("*")]:  # the module cache is read-only
        path.chmod(path.stat().st_mode | stat.S_IWUSR)
    go(["mod", "tidy", "-e"], cwd=module, env=mod_flags, what="go mod tidy")
    go(
        ["run", "generate.go"],
        cwd=command_dir,
        env={**mod_flags, "VERSION": PROVIDER_VERSION},
        what="go generate step (schema-embed.json)",
    )
    ldflags = _ldflags(
        ("github.com/pulumi/pulumi-kubernetes/provider/v4/pkg/version.Version", PROVIDER_VERSION),
        strip=False,
    )
    go(  # as the recipe: no -trimpath, symbols kept
        ["build", "-ldflags", ldflags, "-o", str(partial), f"./{PROVIDER_CMD}"],
        cwd=module,
        env=mod_flags,
        what="go build (about 15 min)",
    )


_BUILDERS = {"kubernetes": _kubernetes, "kwok": _kwok, "pulumi": _pulumi, "provider": _provider}


def build(name: str, out_dir: Path | None = None) -> Path:
    """`out_dir/NAME` at the recipe's version, built unless it already is; returns its path.
    Raises BuildError naming the failed step and command."""
    recipe = _recipe(name)
    out_dir = (out_dir or default_out_dir()).resolve()
    target = out_dir / name
    if is_built(name, out_dir):
        return target
    out_dir.mkdir(parents=True, exist_ok=True)
    # One build at a time: the three control-plane commands share a scratch module, and two
    # builds at once would only compete for the same cores.
    with _locked(build_root() / ".build.lock"):
        if is_built(name, out_dir):  # built by another process while we waited
            return target
        _say(
            f"building {name} {recipe.version} from the Go module proxy into {out_dir} "
            "(this takes minutes; progress below)"
        )
        started, cpu_before = time.monotonic(), _children_cpu()
        handle, partial_name = tempfile.mkstemp(prefix=f".{name}.", suffix=".partial", dir=out_dir)
        os.close(handle)
        partial = Path(partial_name)
        try:
            _BUILDERS[recipe.kind](_Go(name), name, partial)
            if not partial.is_file() or partial.stat().st_size == 0:
                raise BuildError(f"{name}: the build wrote nothing to {partial}")
            partial.chmod(0o755)
            stamp_path(out_dir, name).unlink(missing_ok=True)
            partial.replace(target)
            stamp_path(out_dir, name).write_text(recipe.version + "\n")
        finally:
            partial.unlink(missing_ok=True)
        _say(
            f"built {target} ({recipe.version}) in {time.monotonic() - started:.0f} s wall, "
            f"{_children_cpu() - cpu_before:.0f} s CPU"
        )
    return target


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.servers.kubernetes_build",
        description="Build the Kubernetes test binaries from the Go module proxy.",
    )
    parser.add_argument("names", nargs="*", metavar="NAME", help=f"default: {' '.join(RECIPES)}")
    parser.add_argument("--out-dir", type=Path, default=None, help=f"default: {default_out_dir()}")
    args = parser.parse_args(argv)
    for name in args.names or list(RECIPES):
        try:
            path = build(name, args.out_dir)
        except BuildError as error:
            print(f"kubernetes_build: {error}", file=sys.stderr)
            return 1
        print(f"{name} {version_of(name)}: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
