"""Two `fraudwatch serve` processes sharing one MongoDB store (a real FerretDB), as two
replicas behind a load balancer run: the circuit breaker counts the automated locks of both,
an Idempotency-Key acts once whichever process a retry reaches, and an admin page session
signed in on one process is known to — and signed out by — the other."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from fraudwatch.intervention.stores.mongodb import MongoStore
from live_service import free_port
from scored_fixture import write_scored
from test_intervention_serve import WIRED_CLI, fraudwatch

WORKLOADS = Path(__file__).resolve().parents[3] / "workloads"


def wait_healthy(base: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.2)
    raise AssertionError(f"the service did not start: {log.read_text()}")


@pytest.fixture
def replicas(mongo_url: str, tmp_path: Path) -> Iterator[tuple[list[str], dict[str, str]]]:
    """Two service processes on one MongoDB database; yields their base URLs and a token
    of each role used here (created once, valid on both)."""
    database = f"replicas_{uuid.uuid4().hex[:12]}"
    scored = write_scored(tmp_path / "scored")
    env = {
        **os.environ,
        "FRAUDWATCH_HOME": str(tmp_path / "home"),
        "FRAUDWATCH_STATE_URL": f"{mongo_url.rstrip('/')}/{database}",
        "PYTHONPATH": os.pathsep.join([str(WORKLOADS), os.environ.get("PYTHONPATH", "")]),
    }
    for name in ("FRAUDWATCH_CONFIG", "FRAUDWATCH_ELASTICSEARCH_URL", "FRAUDWATCH_DRY_RUN"):
        env.pop(name, None)
    tokens = {}
    for role in ("admin", "analyst", "automation"):
        created = fraudwatch(env, "tokens", "create", "--role", role)
        assert created.returncode == 0, created.stderr
        tokens[role] = created.stdout.strip().splitlines()[-1]
    command = [sys.executable, "-c", WIRED_CLI, "serve", "--scored", str(scored)]
    procs: list[subprocess.Popen[bytes]] = []
    bases: list[str] = []
    try:
        for i in range(2):
            port = free_port()
            log = tmp_path / f"serve-{i}.log"
            with open(log, "wb") as out:
                procs.append(
                    subprocess.Popen(
                        [*command, "--port", str(port)],
                        env=env,
                        stdout=out,
                        stderr=subprocess.STDOUT,
                    )
                )
            bases.append(f"http://127.0.0.1:{port}")
            wait_healthy(bases[-1], procs[-1], log)
        yield bases, tokens
    finally:
        for proc in procs:
            os.kill(proc.pid, signal.SIGTERM)
        for proc in procs:
            proc.wait(timeout=30)
        store = MongoStore(env["FRAUDWATCH_STATE_URL"])
        store.client.drop_database(database)
        store.close()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_the_circuit_breaker_counts_the_locks_of_both_processes(
    replicas: tuple[list[str], dict[str, str]],
) -> None:
    bases, tokens = replicas
    policy = httpx.put(
        f"{bases[0]}/v1/policy",
        json={"step_up_at": 0.5, "lock_at": 0.6, "max_automated_locks": 3, "reason": "test"},
        headers=bearer(tokens["admin"]),
    )
    assert policy.status_code == 200, policy.text

    # Users 1..12 all score at least 0.6 in the fixture: each alert asks for a lock; half of
    # them reach each process, all at once.
    def alert(user_id: int) -> dict:
        payload = {
            "alerts": [
                {
                    "status": "firing",
                    "labels": {"user_id": str(user_id), "alertname": "high score"},
                    "fingerprint": f"two-processes-{user_id}",
                    "startsAt": "2026-01-01T00:00:00Z",
                }
            ]
        }
        answer = httpx.post(
            f"{bases[user_id % 2]}/v1/hooks/grafana",
            json=payload,
            headers=bearer(tokens["automation"]),
            timeout=60,
        )
        assert answer.status_code == 200, answer.text
        return dict(answer.json()["outcomes"][0])

    with ThreadPoolExecutor(12) as pool:
        outcomes = list(pool.map(alert, range(1, 13)))
    results = sorted(o["result"] for o in outcomes)
    assert results == ["applied"] * 3 + ["queued"] * 9, outcomes
    for base in bases:  # both processes see the breaker open and the same queue
        view = httpx.get(f"{base}/v1/policy", headers=bearer(tokens["admin"])).json()
        assert view["circuit_breaker"] == {"open": True, "automated_locks_in_window": 3}
        queue = httpx.get(f"{base}/v1/approvals", headers=bearer(tokens["admin"])).json()
        assert len(queue["items"]) == 9


def test_an_idempotency_key_acts_once_whichever_process_a_retry_reaches(
    replicas: tuple[list[str], dict[str, str]],
) -> None:
    bases, tokens = replicas
    headers = {**bearer(tokens["analyst"]), "Idempotency-Key": "retry-me"}

    def lock(i: int) -> httpx.Response:
        return httpx.post(
            f"{bases[i % 2]}/v1/accounts/7/lock",
            json={"reason": "retried"},
            headers=headers,
            timeout=60,
        )

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lock, range(8)))
    # A retry that arrives while the first is running is told so (409); every other answer
    # is the first one's, replayed.
    finished = [a for a in answers if a.status_code == 200]
    assert finished and all(a.status_code in (200, 409) for a in answers)
    assert len({a.json()["audit_seq"] for a in finished}) == 1
    assert {a.json()["result"] for a in finished} == {"applied"}
    late = lock(1)  # after all of them: the other process replays the stored answer
    assert late.headers.get("Idempotent-Replayed") == "true"
    assert late.json()["audit_seq"] == finished[0].json()["audit_seq"]
    history = httpx.get(
        f"{bases[0]}/v1/users/7/interventions", headers=bearer(tokens["admin"])
    ).json()
    assert [e["action"] for e in history["items"] if e["action"] == "lock"] == ["lock"]


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', html)
    assert match, "form without a CSRF field"
    return match.group(1)


def test_an_admin_session_is_shared_by_both_processes(
    replicas: tuple[list[str], dict[str, str]],
) -> None:
    bases, tokens = replicas
    with httpx.Client(base_url=bases[0]) as first:
        form = first.get("/admin/login")
        signed_in = first.post(
            "/admin/login",
            data={"token": tokens["analyst"], "csrf": csrf_of(form.text)},
        )
        assert signed_in.status_code == 303
        cookies = dict(first.cookies)
    assert cookies
    with httpx.Client(base_url=bases[1], cookies=cookies) as second:
        page = second.get("/admin")
        assert page.status_code == 200 and "Sign out" in page.text
        acted = second.post(
            "/admin/users/9/actions/step_up",
            data={"reason": "seen on the other replica", "csrf": csrf_of(page.text)},
        )
        assert acted.status_code == 303
        signed_out = second.post("/admin/logout", data={"csrf": csrf_of(page.text)})
        assert signed_out.status_code == 303
    with httpx.Client(base_url=bases[0], cookies=cookies) as first_again:
        after = first_again.get("/admin")
        assert after.status_code in (302, 303, 307) and "/admin/login" in after.headers["location"]
    state = httpx.get(f"{bases[0]}/v1/users/9", headers=bearer(tokens["analyst"])).json()
    assert state["state"] == {"locked": False, "step_up": True}
