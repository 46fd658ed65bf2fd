"""Load on the running intervention service: requests/s and latency percentiles for the
anomaly list, lock and step-up with 8 and 64 concurrent clients, and `/health` while a
1,000-alert hook batch is processed, from a thread-pool load generator on 127.0.0.1.
Used by `make bench` (python -m fraudwatch.bench); on its own, on synthetic results of any
size: `python -m fraudwatch.bench.service --users 1000000`. Prints figures, asserts nothing."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
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


def _load(requests: list, concurrency: int, rate: float | None = None) -> dict:
    """Run the (method, url, kwargs) requests with `concurrency` clients; rps and percentiles.

    Without `rate` each client sends its next request as soon as it has an answer (closed
    loop: the figures are the service's saturation throughput, and latency is queueing
    behind the other clients). With `rate` request i is due at i/rate seconds (open loop, the
    arrival rate a target names) and its latency counts from when it was due, so time spent
    waiting for a free client is counted, not hidden."""
    latencies: list[float] = []
    errors = 0
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)

    def one(client: httpx.Client, numbered: tuple[int, tuple]) -> tuple[float, int]:
        i, (method, url, kwargs) = numbered
        if rate:
            due = start + i / rate
            wait = due - time.perf_counter()
            if wait > 0:
                time.sleep(wait)
            begin = due
        else:
            begin = time.perf_counter()
        status = client.request(method, url, **kwargs).status_code
        return time.perf_counter() - begin, status

    with (
        httpx.Client(timeout=60, limits=limits) as client,
        ThreadPoolExecutor(concurrency) as pool,
    ):
        start = time.perf_counter()
        for seconds, status in pool.map(lambda r: one(client, r), enumerate(requests)):
            latencies.append(seconds)
            errors += status >= 400
        wall = time.perf_counter() - start
    latencies.sort()
    return {
        "requests": len(requests),
        "offered_per_s": rate,
        "errors": errors,
        "requests_per_s": round(len(requests) / wall, 1),
        "p50_ms": round(statistics.median(latencies) * 1000, 1),
        "p99_ms": round(latencies[int(0.99 * (len(latencies) - 1))] * 1000, 1),
    }


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used (Linux /proc), in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _measured(server: subprocess.Popen, requests: list, concurrency: int, rate: float | None):
    """_load, plus the service's CPU time per request: a figure other work on the machine
    does not inflate the way it inflates latencies."""
    before = _cpu_seconds(server.pid)
    figures = _load(requests, concurrency, rate)
    figures["service_cpu_ms_per_request"] = round(
        (_cpu_seconds(server.pid) - before) * 1000 / len(requests), 2
    )
    return figures


def _health_during_hook_batch(base: str, token: str, users: list[int], alerts: int) -> dict:
    """`/health` polled by one client while one `alerts`-alert Grafana notification is
    processed (the liveness probe during a batch): its p99, and how long the batch took."""
    batch = {
        "alerts": [
            {
                "status": "firing",
                "labels": {"user_id": str(users[i % len(users)]), "alertname": "bench"},
                "values": {"score": 0.5},
                "fingerprint": f"bench-{i}",
                "startsAt": "2026-01-01T00:00:00Z",
            }
            for i in range(alerts)
        ]
    }
    answer: dict[str, float | int] = {}

    def post() -> None:
        start = time.perf_counter()
        status = httpx.post(
            f"{base}/v1/hooks/grafana",
            json=batch,
            headers={"Authorization": f"Bearer {token}"},
            timeout=600,
        ).status_code
        answer.update(batch_s=time.perf_counter() - start, status=status)

    thread = threading.Thread(target=post)
    latencies: list[float] = []
    with httpx.Client(timeout=30) as client:
        thread.start()
        while thread.is_alive():
            start = time.perf_counter()
            client.get(f"{base}/health")
            latencies.append(time.perf_counter() - start)
            time.sleep(0.01)
    thread.join()
    latencies.sort()
    return {
        "alerts": alerts,
        "batch_status": answer.get("status"),
        "batch_s": round(float(answer.get("batch_s", 0)), 1),
        "health_polls": len(latencies),
        "health_p50_ms": round(statistics.median(latencies) * 1000, 1) if latencies else None,
        "health_p99_ms": (
            round(latencies[int(0.99 * (len(latencies) - 1))] * 1000, 1) if latencies else None
        ),
    }


def _wait_healthy(base: str, server: subprocess.Popen, seconds: float = 1800) -> float:
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        if server.poll() is not None:
            raise RuntimeError(f"the service exited with status {server.returncode}")
        try:
            if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                return time.perf_counter() - start
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"the service did not answer /health within {seconds:.0f} s")


def bench_service(
    scored: Path,
    requests: int = 2000,
    concurrency: int | tuple[int, ...] = (8, 64),
    hook_alerts: int = 1000,
    extra_env: dict[str, str] | None = None,
    list_rate: float = 300,
    action_rate: float = 200,
) -> dict:
    """Start `fraudwatch serve` on `scored`, load it, stop it; return the figures: the
    anomaly list, lock and step-up with each number of concurrent clients, each as fast as
    the clients go (closed loop) and at the targets' arrival rates (`list_rate`,
    `action_rate`: open loop), and `/health` while a `hook_alerts`-alert hook batch is
    processed."""
    levels = (concurrency,) if isinstance(concurrency, int) else tuple(concurrency)
    home = Path(tempfile.mkdtemp(prefix="fraudwatch-service-bench-"))
    # A 1,000-alert notification is ~170 KB: within hooks.max_body_bytes (4 MiB) by default.
    env = {**os.environ, "FRAUDWATCH_HOME": str(home), **(extra_env or {})}
    token = _cli(env, "tokens", "create", "--role", "analyst").strip().splitlines()[-1]
    automation = _cli(env, "tokens", "create", "--role", "automation").strip().splitlines()[-1]
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
    figures: dict = {"load_average_before": [round(x, 1) for x in os.getloadavg()]}
    try:
        figures["start_s"] = round(_wait_healthy(base, server), 1)
        first = httpx.get(f"{base}/v1/anomalies?page_size=500", headers=auth, timeout=60).json()
        figures["scored_users"] = first["total"]
        users = [item["user_id"] for item in first["items"]]
        for clients in levels:
            for rate in (None, list_rate):
                listing = [
                    (
                        "GET",
                        f"{base}/v1/anomalies?page_size=50&page={1 + i % 20}",
                        {"headers": auth},
                    )
                    for i in range(requests)
                ]
                name = f"anomaly_list_{clients}_clients" + (f"_at_{rate:g}_per_s" if rate else "")
                figures[name] = _measured(server, listing, clients, rate)
            for action in ("lock", "step-up"):
                for rate in (None, action_rate):
                    acting = [
                        (
                            "POST",
                            f"{base}/v1/accounts/{users[i % len(users)]}/{action}",
                            {
                                "headers": {
                                    **auth,
                                    "Idempotency-Key": f"{action}-{clients}-{rate}-{i}",
                                },
                                "json": {"reason": "bench"},
                            },
                        )
                        for i in range(requests // 2)
                    ]
                    name = f"{action.replace('-', '_')}_{clients}_clients" + (
                        f"_at_{rate:g}_per_s" if rate else ""
                    )
                    figures[name] = _measured(server, acting, clients, rate)
        figures["health_during_hook_batch"] = _health_during_hook_batch(
            base, automation, list(range(1, 1 + first["total"])), hook_alerts
        )
        figures["load_average_after"] = [round(x, 1) for x in os.getloadavg()]
        return figures
    finally:
        server.terminate()
        server.wait(timeout=30)
        shutil.rmtree(home, ignore_errors=True)


# --- synthetic scored results at any scale ------------------------------------------------
PERSONAS = ("loose-passive", "tight-passive", "loose-aggressive", "tight-aggressive")
SCENARIOS = ("account_takeover", "card_testing", "money_mule", "structuring")
TX_TYPES = ("payment", "purchase", "transfer", "withdrawal")
COUNTRIES = ("DE", "FR", "NL", "US", "GB", "ES", "IT", "PL")


def write_synthetic_scored(out: Path, users: int, tx_per_user: int = 10, seed: int = 7) -> Path:
    """Scored results in the shape docs/data-contract.md gives (users.parquet sorted by
    score, transactions/part-*.parquet), with random scores: what the service serves, at any
    scale, in seconds rather than the hours generate + score take at 1M users."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    out.mkdir(parents=True, exist_ok=True)
    score = np.sort(rng.beta(2, 8, users))[::-1]
    user_id = rng.permutation(users).astype(np.int64) + 1
    flagged = np.arange(users) < max(1, users // 100)
    persona = pa.DictionaryArray.from_arrays(
        pa.array(rng.integers(0, 4, users), pa.int32()), pa.array(PERSONAS)
    ).cast(pa.string())
    scenario_code = np.where(rng.random(users) < 0.01, rng.integers(0, 4, users), -1)
    scenario = pa.DictionaryArray.from_arrays(
        pa.array(scenario_code, pa.int32(), mask=scenario_code < 0), pa.array(SCENARIOS)
    ).cast(pa.string())
    reasons = pa.array(
        np.where(flagged, "amount_max far above persona; new country", "tx_count slightly high")
    )
    top = pa.array([["amount_max", "n_countries"]] * 2, pa.list_(pa.string())).take(
        pa.array(flagged.astype(np.int64) * 0)
    )
    pq.write_table(
        pa.table(
            {
                "rank": pa.array(np.arange(1, users + 1, dtype=np.int64)),
                "user_id": pa.array(user_id),
                "persona": persona,
                "ensemble_score": pa.array(score),
                "iforest_score": pa.array(np.clip(score + rng.normal(0, 0.02, users), 0, 1)),
                "autoencoder_score": pa.array(np.clip(score + rng.normal(0, 0.02, users), 0, 1)),
                "lstm_score": pa.nulls(users, pa.float64()),
                "flagged": pa.array(flagged),
                "reasons": reasons,
                "top_features": top,
                "tx_count": pa.array(np.full(users, tx_per_user, dtype=np.int64)),
                "amount_mean": pa.array(rng.gamma(2, 30, users)),
                "amount_max": pa.array(rng.gamma(2, 300, users)),
                "label": pa.array((scenario_code >= 0).astype(np.int8)),
                "scenario": scenario,
            }
        ),
        out / "users.parquet",
        row_group_size=100_000,
    )
    tx_dir = out / "transactions"
    tx_dir.mkdir(exist_ok=True)
    n = users * tx_per_user
    tx_score = np.sort(rng.beta(2, 8, n))[::-1]
    owner = rng.integers(0, users, n)
    ts = np.datetime64("2026-01-01T00:00:00", "us") + rng.integers(0, 90 * 86400, n).astype(
        "timedelta64[s]"
    )
    hour = ((ts - ts.astype("datetime64[D]")).astype("timedelta64[h]").astype(np.int32)) % 24
    tx_flagged = np.arange(n) < max(1, n // 100)

    def pick(values: tuple[str, ...], size: int) -> pa.Array:
        codes = pa.array(rng.integers(0, len(values), size), pa.int32())
        return pa.DictionaryArray.from_arrays(codes, pa.array(values)).cast(pa.string())

    table = pa.table(
        {
            "rank": pa.array(np.arange(1, n + 1, dtype=np.int64)),
            "tx_id": pa.array(rng.permutation(n).astype(np.int64) + 1),
            "user_id": pa.array(user_id[owner]),
            "ts": pa.array(ts, pa.timestamp("us", tz="UTC")),
            "amount": pa.array(np.round(rng.gamma(2, 40, n), 2)),
            "currency": pa.array(np.full(n, "EUR")),
            "tx_type": pick(TX_TYPES, n),
            "channel": pick(("web", "app", "api"), n),
            "country": pick(COUNTRIES, n),
            "ip": pa.array(np.full(n, "192.0.2.1")),
            "device_id": pa.array(np.full(n, "dev-1")),
            "counterparty": pa.array(np.full(n, "cp-1")),
            "status": pa.array(np.full(n, "completed")),
            "persona": persona.take(pa.array(owner)),
            "hour": pa.array(hour, pa.int32()),
            "ensemble_score": pa.array(tx_score),
            "iforest_score": pa.array(tx_score),
            "autoencoder_score": pa.array(tx_score),
            "lstm_score": pa.nulls(n, pa.float64()),
            "flagged": pa.array(tx_flagged),
            "reasons": pa.array(np.where(tx_flagged, "amount far above usual", "")),
            "top_features": pa.array([["amount"]], pa.list_(pa.string())).take(
                pa.array(np.zeros(n, dtype=np.int64))
            ),
            "label": pa.array(np.zeros(n, dtype=np.int8)),
            "scenario": scenario.take(pa.array(owner)),
        }
    )
    part = 2_000_000
    for i, start in enumerate(range(0, n, part)):
        pq.write_table(table.slice(start, part), tx_dir / f"part-{i}.parquet")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scored", type=Path, help="scored results to serve")
    parser.add_argument("--users", type=int, default=1_000_000, help="synthetic users")
    parser.add_argument("--tx-per-user", type=int, default=10)
    parser.add_argument("--workdir", type=Path, help="where synthetic results are kept")
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", default="8,64")
    parser.add_argument("--hook-alerts", type=int, default=1000)
    args = parser.parse_args()
    scored = args.scored
    if scored is None:
        workdir = args.workdir or Path(tempfile.gettempdir()) / "fraudwatch-service-bench-data"
        scored = workdir / f"scored-{args.users}-{args.tx_per_user}"
        if not (scored / "users.parquet").is_file():
            write_synthetic_scored(scored, args.users, args.tx_per_user)
    levels = tuple(int(c) for c in args.concurrency.split(","))
    figures = bench_service(scored, args.requests, levels, args.hook_alerts)
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
