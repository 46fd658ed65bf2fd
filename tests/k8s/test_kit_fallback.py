"""Where the control-plane and Pulumi binaries come from: the shared kit when it has them
(checksums verified), else a build from the Go module proxy by the kit's recipes.

These run the real `kubernetes.binary()` and `kubernetes_build.build()` against a fake `go`
placed first on PATH, which records its arguments, working directory and environment and writes
the output file a real build would. A fake, because the real builds need the Go module proxy and
many minutes of CPU (kwok about 6 min wall here, kube-apiserver longer); they were run for real
through the same functions, as docs/operations/kubernetes.md says. Nothing here uses the
network, and no test starts a real build.
"""

from __future__ import annotations

import hashlib
import json
import lzma
import os
import stat
import sys
from pathlib import Path

import pytest

from tests.servers import kubernetes, kubernetes_build
from tests.servers.process_control import ServerStartError

FAKE_GO = """#!{python}
import json, os, sys
from pathlib import Path

args = sys.argv[1:]
with open(os.environ["FAKE_GO_LOG"], "a") as log:
    log.write(json.dumps({{
        "args": args,
        "cwd": os.getcwd(),
        "nice": os.nice(0),
        "GOBIN": os.environ.get("GOBIN"),
        "GOFLAGS": os.environ.get("GOFLAGS"),
    }}) + "\\n")
if args and args[0] == os.environ.get("FAKE_GO_FAIL"):
    print("go: simulated failure", file=sys.stderr)
    sys.exit(1)
if args and args[0] == "build":
    Path(args[args.index("-o") + 1]).write_bytes(b"built by the fake go\\n")
elif args and args[0] == "install":
    name = args[-1].split("@")[0].rsplit("/", 1)[-1]
    Path(os.environ["GOBIN"], name).write_bytes(b"installed by the fake go\\n")
elif args[:2] == ["mod", "init"]:
    Path("go.mod").write_text("module " + args[2] + "\\n")
"""


@pytest.fixture
def fake_go(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fake `go` first on PATH; returns its log (one JSON line per call). The user cache
    (XDG_CACHE_HOME) and the unpacked-kit folder point into tmp_path."""
    bin_dir = tmp_path / "fake-bin"
    bin_dir.mkdir()
    go = bin_dir / "go"
    go.write_text(FAKE_GO.format(python=sys.executable))
    go.chmod(go.stat().st_mode | stat.S_IXUSR)
    log = tmp_path / "go-calls.jsonl"
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}")
    monkeypatch.setenv("FAKE_GO_LOG", str(log))
    monkeypatch.delenv("FAKE_GO_FAIL", raising=False)
    monkeypatch.delenv(kubernetes_build.CACHE_VARIABLE, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "user-cache"))
    monkeypatch.setattr(kubernetes, "BIN_CACHE", tmp_path / "repo-cache" / "k8s" / "bin")
    return log


def calls(log: Path) -> list[dict]:
    if not log.is_file():
        return []
    return [json.loads(line) for line in log.read_text().splitlines()]


def build_cache(tmp_path: Path) -> Path:
    return tmp_path / "user-cache" / "fraudwatch" / "k8s-build"


def test_kit_without_the_binary_builds_kwok_once_by_go_install(
    fake_go: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    kit = tmp_path / "empty-kit"
    kit.mkdir()
    monkeypatch.setenv(kubernetes.KIT_VARIABLE, str(kit))

    path = kubernetes.binary("kwok")

    out_dir = build_cache(tmp_path) / "bin"
    assert path == out_dir / "kwok"
    assert path.read_bytes() == b"installed by the fake go\n"
    assert os.access(path, os.X_OK)
    assert (out_dir / "kwok.version").read_text().strip() == "v0.8.0"
    (call,) = calls(fake_go)
    assert call["args"] == [
        "install",
        "-trimpath",
        "-ldflags",
        "-s -w",
        "sigs.k8s.io/kwok/cmd/kwok@v0.8.0",
    ]
    assert call["nice"] == 19
    assert Path(call["GOBIN"]).parent == out_dir
    assert not Path(call["GOBIN"]).exists()  # the private GOBIN is gone
    assert not list(out_dir.glob("*.partial"))

    # The second call finds the binary at its version: no go run.
    assert kubernetes.binary("kwok") == path
    assert len(calls(fake_go)) == 1


def test_no_kit_folder_builds_kube_apiserver_by_the_recipe(
    fake_go: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(kubernetes.KIT_VARIABLE, str(tmp_path / "no-such-kit"))

    path = kubernetes.binary("kube-apiserver")

    root = build_cache(tmp_path)
    assert path == root / "bin" / "kube-apiserver"
    assert (root / "bin" / "kube-apiserver.version").read_text().strip() == "v1.34.4"
    recorded = calls(fake_go)
    steps = [c["args"][:2] for c in recorded]
    assert steps == [["mod", "init"], ["mod", "edit"], ["get", "k8s.io/kubernetes/cmd/kube-apiserver@v1.34.4"], ["mod", "tidy"], ["build", "-trimpath"]]  # fmt: skip
    scratch = root / "src" / "kubernetes-v1.34.4"
    assert {c["cwd"] for c in recorded} == {str(scratch)}
    # go mod tidy keeps only what the module imports: tools.go imports the three commands.
    tools = (scratch / "tools.go").read_text()
    assert "//go:build tools" in tools
    assert '_ "k8s.io/kubernetes/cmd/kube-apiserver"' in tools
    assert all(c["nice"] == 19 for c in recorded)
    replaces = recorded[1]["args"][2:]
    assert len(replaces) == 31
    assert "-replace=k8s.io/api=k8s.io/api@v0.34.4" in replaces
    assert "-replace=k8s.io/client-go=k8s.io/client-go@v0.34.4" in replaces
    assert "-mod=mod" in recorded[2]["GOFLAGS"].split()
    build = recorded[4]["args"]
    ldflags = build[build.index("-ldflags") + 1]
    assert "-X k8s.io/component-base/version.gitVersion=v1.34.4" in ldflags
    assert "-X k8s.io/component-base/version.gitMajor=1" in ldflags
    assert "-X k8s.io/component-base/version.gitMinor=34" in ldflags
    assert build[-1] == "k8s.io/kubernetes/cmd/kube-apiserver"
    written = Path(build[build.index("-o") + 1])
    assert written.parent == root / "bin" and written.name.endswith(".partial")
    assert not written.exists()  # renamed into place

    # kube-scheduler reuses the scratch module: no second `go mod init`.
    kubernetes.binary("kube-scheduler")
    later = [c["args"][:2] for c in calls(fake_go)[5:]]
    assert ["mod", "init"] not in later
    assert later[-1] == ["build", "-trimpath"]


def test_a_stamp_of_another_version_is_rebuilt(
    fake_go: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(kubernetes.KIT_VARIABLE, str(tmp_path / "no-such-kit"))
    out_dir = build_cache(tmp_path) / "bin"
    out_dir.mkdir(parents=True)
    (out_dir / "kwok").write_bytes(b"old\n")
    (out_dir / "kwok.version").write_text("v0.7.0\n")

    assert kubernetes.binary("kwok").read_bytes() == b"installed by the fake go\n"
    assert (out_dir / "kwok.version").read_text().strip() == "v0.8.0"
    assert len(calls(fake_go)) == 1


def _kit_with(kit: Path, name: str, content: bytes, *, corrupt: bool = False) -> None:
    bin_dir = kit / "bin"
    bin_dir.mkdir(parents=True)
    packed = lzma.compress(content)
    (bin_dir / f"{name}.xz").write_bytes(packed)
    unpacked_sum = hashlib.sha256(content).hexdigest()
    packed_sum = hashlib.sha256(b"other" if corrupt else packed).hexdigest()
    (bin_dir / "SHA256SUMS").write_text(f"{unpacked_sum}  {name}\n{packed_sum}  {name}.xz\n")


def test_a_kit_with_the_binary_is_used_checksummed_and_nothing_is_built(
    fake_go: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    kit = tmp_path / "kit"
    _kit_with(kit, "pulumi", b"the kit's pulumi\n")
    monkeypatch.setenv(kubernetes.KIT_VARIABLE, str(kit))

    path = kubernetes.binary("pulumi")

    assert path == kubernetes.BIN_CACHE / "pulumi"
    assert path.read_bytes() == b"the kit's pulumi\n"
    assert calls(fake_go) == []
    assert not build_cache(tmp_path).exists()


def test_a_kit_binary_that_fails_its_checksum_is_an_error_not_a_build(
    fake_go: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    kit = tmp_path / "kit"
    _kit_with(kit, "kwok", b"kwok\n", corrupt=True)
    monkeypatch.setenv(kubernetes.KIT_VARIABLE, str(kit))

    with pytest.raises(ServerStartError, match="does not match its SHA256SUMS"):
        kubernetes.binary("kwok")
    assert calls(fake_go) == []


def test_a_failed_build_says_what_was_tried(
    fake_go: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    kit = tmp_path / "empty-kit"
    kit.mkdir()
    monkeypatch.setenv(kubernetes.KIT_VARIABLE, str(kit))
    monkeypatch.setenv("FAKE_GO_FAIL", "get")

    with pytest.raises(ServerStartError) as raised:
        kubernetes.binary("kube-controller-manager")

    message = str(raised.value)
    assert str(kit / "bin" / "kube-controller-manager.xz") in message
    assert kubernetes.KIT_VARIABLE in message
    assert "Go module proxy" in message
    assert "go get k8s.io/kubernetes/cmd/kube-controller-manager@v1.34.4" in message
    out_dir = build_cache(tmp_path) / "bin"
    assert not (out_dir / "kube-controller-manager").exists()
    assert not list(out_dir.glob("*.partial"))


def test_without_go_the_message_says_to_install_it_or_provide_the_kit(
    fake_go: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(kubernetes.KIT_VARIABLE, str(tmp_path / "no-such-kit"))
    empty = tmp_path / "empty-path"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))

    with pytest.raises(ServerStartError, match=r"Go toolchain \(`go`\) is not on PATH"):
        kubernetes.binary("pulumi-resource-kubernetes")


def test_unknown_names_have_no_recipe() -> None:
    with pytest.raises(kubernetes_build.BuildError, match="no build recipe"):
        kubernetes_build.build("kubectl")
