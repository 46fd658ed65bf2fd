"""A green run means every test ran: a skip fails the run unless its reason is on ALLOWED.

Loaded by `make test`'s tiers (`-p tests.skip_policy` in the Makefile). A skipped test is
something a user would notice only when it breaks: a missing data set or extra must not
turn CI green silently. The allow-list is short and each entry says why it is fine.
"""

from __future__ import annotations

import pytest

#: Reasons (substrings) that do not fail the run, and why.
ALLOWED = {
    # A developer's long-running servers (`make services-up`) are never restarted by tests;
    # the tiers started from `make test` own their servers, so this never fires there.
    "belongs to `make services-up`": "the developer's own servers are left alone",
    "was formatted without the SCRAM user": "a developer's broker from an older services-up",
}

_skipped: list[tuple[str, str]] = []


def _note_skip(report: pytest.TestReport | pytest.CollectReport) -> None:
    reason = str(report.longrepr[-1]) if isinstance(report.longrepr, tuple) else ""
    if not any(allowed in reason for allowed in ALLOWED):
        _skipped.append((report.nodeid, reason))


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.skipped and not hasattr(report, "wasxfail"):
        _note_skip(report)


def pytest_collectreport(report: pytest.CollectReport) -> None:
    # A module-level importorskip skips the whole module at collection.
    if report.skipped:
        _note_skip(report)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if _skipped and exitstatus in (pytest.ExitCode.OK, pytest.ExitCode.NO_TESTS_COLLECTED):
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter, exitstatus: int) -> None:  # type: ignore[no-untyped-def]
    if not _skipped:
        return
    terminalreporter.section("unexpected skips (tests/skip_policy.py)", red=True)
    for nodeid, reason in _skipped:
        terminalreporter.line(f"{nodeid}: {reason}")
    terminalreporter.line(
        f"{len(_skipped)} test(s) skipped for a reason not on the allow-list: the run fails. "
        "Install what they need, or add the reason to ALLOWED with why."
    )
