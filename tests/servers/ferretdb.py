"""Start and stop FerretDB v1.24 (a MongoDB-wire-compatible database) on SQLite, on 127.0.0.1.

Built from the Go module proxy on first use into a cache this script owns
(`$FRAUDWATCH_TEST_CACHE/ferretdb`, default `~/.cache/fraudwatch-tests/ferretdb`); later starts
reuse the binary. Usage from Python: `pid = start(state_dir, port)`, `stop(state_dir)`,
`url(port)`. From a shell: `python tests/servers/ferretdb.py build|start|stop STATE_DIR [PORT]`.

Why not a bare `go install …@v1.24.x`: the installed binary panics at start-up, because the
module zip lacks the `build/version/version.txt` that FerretDB's release build generates. So
the module is downloaded into a private module cache (writable, `-modcacherw`), that one file
is written with the release's version, and then `go install` builds it as usual.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

VERSION = "v1.24.2"
MODULE = "github.com/FerretDB/FerretDB"
BUILD_TIMEOUT_S = 900
START_TIMEOUT_S = 60


def cache_dir() -> Path:
    root = os.environ.get("FRAUDWATCH_TEST_CACHE") or str(Path.home() / ".cache/fraudwatch-tests")
    return Path(root).expanduser() / "ferretdb"


def binary() -> Path:
    return cache_dir() / VERSION / "bin" / "ferretdb"


def _escaped(module: str) -> str:
    # The module cache spells upper-case letters as '!' + lower case.
    return "".join(f"!{c.lower()}" if c.isupper() else c for c in module)


def build() -> Path:
    """Fetch and build FerretDB once; return the binary's path."""
    target = binary()
    if target.is_file():
        return target
    base = cache_dir() / VERSION
    env = {
        **os.environ,
        "GOMODCACHE": str(base / "gomod"),
        "GOBIN": str(base / "bin"),
        "GOFLAGS": "-modcacherw",
        "GOTOOLCHAIN": "local",
        "CGO_ENABLED": "0",
    }
    subprocess.run(
        ["go", "mod", "download", f"{MODULE}@{VERSION}"],
        env=env,
        check=True,
        cwd=base.parent if base.parent.exists() else None,
        timeout=BUILD_TIMEOUT_S,
    )
    source = base / "gomod" / f"{_escaped(MODULE)}@{VERSION}"
    (source / "build" / "version" / "version.txt").write_text(VERSION + "\n")
    subprocess.run(
        ["go", "install", f"{MODULE}/cmd/ferretdb@{VERSION}"],
        env=env,
        check=True,
        timeout=BUILD_TIMEOUT_S,
    )
    return target


def url(port: int = 27017) -> str:
    return f"mongodb://127.0.0.1:{port}/"


def _answers_ping(port: int) -> bool:
    try:
        from pymongo import MongoClient
    except ImportError:  # pragma: no cover - without pymongo fall back to a TCP check
        with socket.socket() as sock:
            sock.settimeout(1)
            return sock.connect_ex(("127.0.0.1", port)) == 0
    client: MongoClient = MongoClient(url(port), serverSelectionTimeoutMS=500)
    try:
        client.admin.command("ping")
        return True
    except Exception:
        return False
    finally:
        client.close()


def start(state_dir: Path, port: int = 27017) -> int:
    """Start FerretDB with its SQLite data under state_dir; wait for a ping; return the pid."""
    state_dir = Path(state_dir)
    (state_dir / "data").mkdir(parents=True, exist_ok=True)
    exe = build()
    log = open(state_dir / "ferretdb.log", "ab")  # noqa: SIM115 - the child keeps it open
    proc = subprocess.Popen(
        [
            str(exe),
            f"--listen-addr=127.0.0.1:{port}",
            "--handler=sqlite",
            f"--sqlite-url=file:{state_dir / 'data'}/",
            f"--state-dir={state_dir}",
            "--telemetry=disable",
            "--debug-addr=-",
            "--log-level=warn",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    (state_dir / "ferretdb.pid").write_text(str(proc.pid))
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = (state_dir / "ferretdb.log").read_text(errors="replace")[-2000:]
            raise RuntimeError(f"FerretDB exited with {proc.returncode}:\n{tail}")
        if _answers_ping(port):
            return proc.pid
        time.sleep(0.2)
    stop(state_dir)
    raise RuntimeError(f"FerretDB did not answer a ping on 127.0.0.1:{port} in {START_TIMEOUT_S}s")


def stop(state_dir: Path) -> None:
    """Stop the FerretDB that start() recorded in state_dir (only that pid)."""
    pid_file = Path(state_dir) / "ferretdb.pid"
    if not pid_file.is_file():
        return
    pid = int(pid_file.read_text().strip())
    try:
        os.kill(pid, signal.SIGTERM)
        for _ in range(100):
            os.kill(pid, 0)
            time.sleep(0.1)
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    pid_file.unlink(missing_ok=True)


if __name__ == "__main__":
    command, *rest = sys.argv[1:] or ["build"]
    if command == "build":
        print(build())
    elif command == "start":
        print(start(Path(rest[0]), int(rest[1]) if len(rest) > 1 else 27017))
    elif command == "stop":
        stop(Path(rest[0]))
    else:
        sys.exit("usage: ferretdb.py build | start STATE_DIR [PORT] | stop STATE_DIR")
