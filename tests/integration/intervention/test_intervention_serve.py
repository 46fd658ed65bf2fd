"""`fraudwatch serve` and `fraudwatch tokens create` as a user runs them, wired the way the
top-level CLI wires them, against a real uvicorn process on 127.0.0.1."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
from live_service import free_port
from scored_fixture import write_scored

WIRED_CLI = """
import typer
from fraudwatch.errors import UserError
from fraudwatch.intervention.cli import audit_app, serve, tokens_app
app = typer.Typer()
app.command("serve")(serve)
app.add_typer(tokens_app, name="tokens")
app.add_typer(audit_app, name="audit")
try:
    app()
except UserError as err:
    print(err, file=__import__("sys").stderr)
    raise SystemExit(2)
"""


def fraudwatch(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", WIRED_CLI, *args],
        env=env,
        text=True,
        capture_output=True,
        timeout=60,
    )


def test_serve_runs_the_service_that_a_cli_token_can_use(tmp_path: Path) -> None:
    home = tmp_path / "home"
    scored = write_scored(home / "demo" / "scored")  # where `fraudwatch demo` writes
    workloads = Path(__file__).resolve().parents[3] / "workloads"
    env = {
        **os.environ,
        "FRAUDWATCH_HOME": str(home),
        "PYTHONPATH": os.pathsep.join([str(workloads), os.environ.get("PYTHONPATH", "")]),
    }
    env.pop("FRAUDWATCH_CONFIG", None)
    env.pop("FRAUDWATCH_STATE_URL", None)
    created = fraudwatch(env, "tokens", "create", "--role", "analyst")
    assert created.returncode == 0, created.stderr
    token = created.stdout.strip().splitlines()[-1]

    port = free_port()
    log = open(tmp_path / "serve.log", "w")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [sys.executable, "-c", WIRED_CLI, "serve", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        else:
            raise AssertionError((tmp_path / "serve.log").read_text())
        headers = {"Authorization": f"Bearer {token}"}
        top = httpx.get(f"{base}/v1/anomalies?page_size=1", headers=headers).json()
        assert top["items"][0]["user_id"] == 1 and top["total"] == 40
        locked = httpx.post(
            f"{base}/v1/accounts/1/lock", json={"reason": "from the CLI test"}, headers=headers
        )
        assert locked.json()["result"] == "applied"
    finally:
        os.kill(proc.pid, signal.SIGTERM)
        proc.wait(timeout=20)
        log.close()
    verified = fraudwatch(env, "audit", "verify")
    assert verified.returncode == 0 and "2 entries" in verified.stdout  # token + lock
    assert (home / "intervention.sqlite3").is_file()
    assert scored.is_dir()
