"""Run the intervention service under uvicorn on 127.0.0.1 in a background thread (tests)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import uvicorn
from fraudwatch.intervention.api import create_app
from fraudwatch.intervention.config import load_settings
from fraudwatch.intervention.results import ResultsReader, ScoredResults
from fraudwatch.intervention.stores.sqlite import SqliteStore


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def running_service(
    scored_dir: Path,
    state_path: Path,
    results: ResultsReader | None = None,
    env: dict[str, str] | None = None,
) -> Iterator[tuple[str, SqliteStore]]:
    """Yield (base URL, store) of a live service; stop it on exit. `results` replaces the
    Parquet reader over `scored_dir`; `env` are settings as environment overrides."""
    store = SqliteStore(state_path)
    settings = load_settings(state_path.parent / "absent.toml", env or {})
    app = create_app(settings, store, results or ScoredResults(scored_dir))
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.1)
    else:
        raise RuntimeError("the intervention service did not start")
    try:
        yield base, store
    finally:
        server.should_exit = True
        thread.join(timeout=10)
