"""Load on the running intervention service: requests/s and latency percentiles for the
anomaly list and for an intervention, from a thread-pool load generator on 127.0.0.1.
Used by `make bench` (python -m fraudwatch.bench); prints figures, asserts nothing."""

from __future__ import annotations

import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _cli(env: dict, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "fraudwatch.cli", *args],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    return done.stdout


def _load(requests: list, concurrency: int) -> dict:
    """Run the (method, url, kwargs) requests with `concurrency` clients; rps and percentiles."""
    latencies: list[float] = []
    errors = 0

    def one(client: httpx.Client, request) -> tuple[float, int]:
        method, url, kwargs = request
        start = time.perf_counter()
        status = client.request(method, url, **kwargs).status_code
        return time.perf_counter() - start, status

    with httpx.Client(timeout=30) as client, ThreadPoolExecutor(concurrency) as pool:
        start = time.perf_counter()
        for seconds, status in pool.map(lambda r: one(client, r), requests):
            latencies.append(seconds)
            errors += status >= 400
        wall = time.perf_counter() - start
    latencies.sort()
    return {
        "requests": len(requests),
        "errors": errors,
        "requests_per_s": round(len(requests) / wall, 1),
        "p50_ms": round(statistics.median(latencies) * 1000, 1),
        "p99_ms": round(latencies[int(0.99 * (len(latencies) - 1))] * 1000, 1),
    }


def bench_service(scored: Path, requests: int = 2000, concurrency: int = 8) -> dict:
    """Start `fraudwatch serve` on `scored`, load it, stop it; return the figures."""
    home = Path(tempfile.mkdtemp(prefix="fraudwatch-service-bench-"))
    env = {**os.environ, "FRAUDWATCH_HOME": str(home)}
    token = _cli(env, "tokens", "create", "--role", "analyst").strip().splitlines()[-1]
    port = _free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "fraudwatch.cli",
            "serve",
            "--port",
            str(port),
            "--scored",
            str(scored),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    auth = {"Authorization": f"Bearer {token}"}
    try:
        for _ in range(120):
            try:
                if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        users = [
            item["user_id"]
            for item in httpx.get(
                f"{base}/v1/anomalies?page_size=500", headers=auth, timeout=30
            ).json()["items"]
        ]
        listing = [
            ("GET", f"{base}/v1/anomalies?page_size=50&page={1 + i % 20}", {"headers": auth})
            for i in range(requests)
        ]
        actions = [
            (
                "POST",
                f"{base}/v1/accounts/{users[i % len(users)]}/step-up",
                {"headers": {**auth, "Idempotency-Key": f"bench-{i}"}, "json": {"reason": "bench"}},
            )
            for i in range(requests // 4)
        ]
        return {
            "anomaly_list": _load(listing, concurrency),
            "intervention_step_up": _load(actions, concurrency),
            "concurrency": concurrency,
        }
    finally:
        server.terminate()
        server.wait(timeout=30)
