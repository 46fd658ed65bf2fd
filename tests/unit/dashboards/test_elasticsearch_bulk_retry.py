"""Bulk indexing rides out a busy or briefly unreachable cluster and never duplicates.

A real node cannot be made to answer 429 or drop a connection on cue, so these tests put a
scripted HTTP transport (httpx.MockTransport) under the real ElasticsearchHttp client; the
behaviour against a real node is in tests/integration/dashboards.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from fraudwatch.elasticsearch.bulk import ElasticsearchUnavailable, RetryBudget, bulk_index
from fraudwatch.elasticsearch.client import ElasticsearchHttp, connect
from fraudwatch.errors import UserError

TWO = RetryBudget(retries=2)
DOCS = [(f"tx{i}:v1", {"tx_id": f"tx{i}", "ensemble_score": i / 10}) for i in range(4)]


def scripted(
    answers: list[Callable[[list[str]], httpx.Response]],
) -> tuple[ElasticsearchHttp, list[list[str]]]:
    """A client whose n-th bulk request gets answers[n](ids sent); records the ids of each."""
    sent: list[list[str]] = []

    def handle(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/_cluster/health":  # asked before each retry
            return httpx.Response(200, json={"status": "yellow", "timed_out": False})
        assert request.url.path == "/_bulk"
        assert request.headers["content-type"] == "application/x-ndjson"
        lines = [json.loads(line) for line in request.content.decode().splitlines()]
        ids = [line["index"]["_id"] for line in lines[::2]]
        sent.append(ids)
        return answers[len(sent) - 1](ids)

    client = ElasticsearchHttp("http://127.0.0.1:9200", transport=httpx.MockTransport(handle))
    return client, sent


def items(statuses: dict[str, int]) -> Callable[[list[str]], httpx.Response]:
    """A bulk answer with the given status per id (201 for ids not named)."""

    def answer(ids: list[str]) -> httpx.Response:
        result = []
        for doc_id in ids:
            status = statuses.get(doc_id, 201)
            outcome = {"_id": doc_id, "status": status}
            if status >= 300:
                outcome["error"] = {"type": "es_rejected_execution_exception", "reason": "busy"}
            result.append({"index": outcome})
        return httpx.Response(200, json={"errors": bool(statuses), "items": result})

    return answer


def unreachable(ids: list[str]) -> httpx.Response:
    raise httpx.ConnectError("connection refused")


def whole_request(status: int) -> Callable[[list[str]], httpx.Response]:
    return lambda ids: httpx.Response(status, json={"error": {"type": "x", "reason": "busy"}})


def test_busy_items_are_retried_alone_with_growing_back_off() -> None:
    client, sent = scripted(
        [items({"tx1:v1": 429, "tx3:v1": 503}), items({"tx3:v1": 429}), items({})]
    )
    waits: list[float] = []

    report = bulk_index(client, "fraudwatch-transactions", DOCS, sleep=waits.append)

    assert sent == [["tx0:v1", "tx1:v1", "tx2:v1", "tx3:v1"], ["tx1:v1", "tx3:v1"], ["tx3:v1"]]
    assert report.indexed == 4  # each document counted once, whatever the retries
    assert report.retries == 2
    assert waits == [0.5, 1.0]


def test_lost_connection_and_overloaded_answers_are_retried() -> None:
    client, sent = scripted([unreachable, whole_request(429), whole_request(502), items({})])
    waits: list[float] = []

    report = bulk_index(client, "fraudwatch-transactions", DOCS, sleep=waits.append)

    assert len(sent) == 4 and all(ids == [d for d, _ in DOCS] for ids in sent)
    assert (report.indexed, report.retries) == (4, 3)
    assert waits == [0.5, 1.0, 2.0]


def test_a_cluster_that_stays_down_is_one_line_error() -> None:
    client, _ = scripted([unreachable] * 3)
    with pytest.raises(ElasticsearchUnavailable, match=r"did not answer .*check --es-url"):
        bulk_index(client, "fraudwatch-transactions", DOCS, budget=TWO, sleep=lambda _: None)


def test_items_still_busy_after_the_last_retry_are_reported() -> None:
    client, _ = scripted([items({"tx2:v1": 429})] * 3)
    with pytest.raises(
        ElasticsearchUnavailable, match=r"still refused 1 documents as busy after 2 retries"
    ):
        bulk_index(client, "fraudwatch-transactions", DOCS, budget=TWO, sleep=lambda _: None)


class FakeClock:
    """Time that passes only when the code under test sleeps (or a request 'takes' time)."""

    def __init__(self) -> None:
        self.now = 0.0
        self.waits: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.now += seconds


def test_a_time_budget_rides_out_an_outage_then_delivers_everything_once() -> None:
    """The streaming job's budget: no retry count, minutes of waiting, capped back-off."""
    clock = FakeClock()
    client, sent = scripted([unreachable] * 7 + [items({})])
    budget = RetryBudget(retries=None, seconds=300, initial_s=0.5, max_s=15)

    report = bulk_index(
        client, "fraudwatch-transactions", DOCS, budget=budget, sleep=clock.sleep, clock=clock
    )

    assert (report.indexed, report.retries) == (4, 7)
    assert clock.waits == [0.5, 1.0, 2.0, 4.0, 8.0, 15.0, 15.0]  # doubling, capped at max_s
    assert all(ids == [d for d, _ in DOCS] for ids in sent)


def test_a_time_budget_ends_with_unavailable_not_a_silent_drop() -> None:
    clock = FakeClock()
    client, _ = scripted([unreachable] * 100)
    budget = RetryBudget(retries=None, seconds=60, initial_s=0.5, max_s=15)
    with pytest.raises(ElasticsearchUnavailable, match=r"did not answer .* over 4\d s"):
        bulk_index(
            client, "fraudwatch-transactions", DOCS, budget=budget, sleep=clock.sleep, clock=clock
        )
    assert sum(clock.waits) <= 60


def test_a_budget_without_any_limit_is_refused() -> None:
    with pytest.raises(ValueError, match="needs a limit"):
        RetryBudget(retries=None, seconds=None)


def test_a_client_error_for_the_whole_request_is_not_retried() -> None:
    client, sent = scripted([whole_request(400)])
    with pytest.raises(UserError, match=r"bulk request to fraudwatch-transactions failed \(400"):
        bulk_index(client, "fraudwatch-transactions", DOCS, sleep=lambda _: None)
    assert len(sent) == 1


def test_credentials_come_from_the_environment_or_secrets_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[str] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers.get("authorization", ""))
        return httpx.Response(200, json={})

    for name in ("FRAUDWATCH_ES_API_KEY", "FRAUDWATCH_ES_USERNAME", "FRAUDWATCH_ES_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    (tmp_path / "es-password").write_text("s3cret\n")
    monkeypatch.setenv("FRAUDWATCH_SECRETS_DIR", str(tmp_path))
    monkeypatch.setenv("FRAUDWATCH_ES_USERNAME", "publisher")
    client = connect("http://127.0.0.1:9200", transport=httpx.MockTransport(handle))
    client.request("GET", "/")
    assert seen[-1] == "Basic " + base64.b64encode(b"publisher:s3cret").decode()

    monkeypatch.setenv("FRAUDWATCH_ES_API_KEY", "a2V5")
    client = connect("http://127.0.0.1:9200", transport=httpx.MockTransport(handle))
    client.request("GET", "/")
    assert seen[-1] == "ApiKey a2V5"


def test_a_username_without_password_is_one_line_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("FRAUDWATCH_ES_API_KEY", "FRAUDWATCH_ES_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("FRAUDWATCH_SECRETS_DIR", str(tmp_path))
    monkeypatch.setenv("FRAUDWATCH_ES_USERNAME", "publisher")
    with pytest.raises(UserError, match="FRAUDWATCH_ES_USERNAME is set but no password"):
        connect("http://127.0.0.1:9200")


def test_missing_ca_file_and_bad_scheme_are_one_line_errors(tmp_path: Path) -> None:
    with pytest.raises(UserError, match=r"--ca-cert .* does not exist"):
        ElasticsearchHttp("https://127.0.0.1:9200", ca_cert=tmp_path / "missing.pem")
    with pytest.raises(UserError, match="must start with http:// or https://"):
        ElasticsearchHttp("127.0.0.1:9200")


def test_after_a_failure_it_writes_only_once_the_cluster_is_ready_again() -> None:
    """A node that has just restarted can take a bulk request before it has recovered its
    aliases (and refuse the alias as an index name): retries wait for yellow health first."""
    asked: list[str] = []
    health = iter(
        [
            httpx.Response(408, json={"status": "red", "timed_out": True}),
            httpx.Response(200, json={"status": "yellow", "timed_out": False}),
        ]
    )
    bulks = iter([unreachable, items({})])

    def handle(request: httpx.Request) -> httpx.Response:
        asked.append(request.url.path)
        if request.url.path == "/_cluster/health":
            assert request.url.params["wait_for_status"] == "yellow"
            return next(health)
        return next(bulks)([d for d, _ in DOCS])

    client = ElasticsearchHttp("http://127.0.0.1:9200", transport=httpx.MockTransport(handle))
    report = bulk_index(client, "fraudwatch-transactions", DOCS, sleep=lambda _: None)

    assert asked == ["/_bulk", "/_cluster/health", "/_cluster/health", "/_bulk"]
    assert (report.indexed, report.retries) == (4, 2)
