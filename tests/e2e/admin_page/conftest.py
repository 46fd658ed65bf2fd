"""Fixtures for the admin-page browser test: a live service and Debian's headless Chromium."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(TESTS / "unit" / "intervention"))  # scored_fixture
sys.path.insert(0, str(TESTS / "integration" / "intervention"))  # live_service

CHROMIUM = "/usr/bin/chromium"  # Debian's package; never a downloaded browser build
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture
def output_dir(tmp_path: Path, request: pytest.FixtureRequest) -> Path:
    """Where screenshots go: $FRAUDWATCH_TEST_OUTPUT/<test> when set, else the test's tmp dir."""
    root = os.environ.get("FRAUDWATCH_TEST_OUTPUT")
    target = Path(root) / "e2e" / request.node.name if root else tmp_path / "screenshots"
    target.mkdir(parents=True, exist_ok=True)
    return target


@pytest.fixture
def browser() -> Iterator:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: run `apt-get install -y chromium`")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()
