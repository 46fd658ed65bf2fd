"""Property test of the running API from its own OpenAPI spec: no input makes it answer 5xx."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from fraudwatch.intervention.auth import create_token
from hypothesis import HealthCheck, given, settings
from live_service import running_service
from schemathesis.checks import not_a_server_error, status_code_conformance
from scored_fixture import write_scored


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    root = tmp_path_factory.mktemp("fuzz")
    with running_service(write_scored(root / "scored"), root / "state.sqlite3") as (base, store):
        token, _ = create_token(store, "admin")
        yield base, token


HOOKS = ("POST /v1/hooks/grafana", "POST /v1/hooks/watcher")


def fuzz(operation: Any, base: str, token: str, seen: list[tuple[int, Any]]) -> None:
    """Generated cases of one operation, called with the admin token (which may do
    everything, hooks included: the bodies reach the hook parsers and the policy, not only
    the authentication check); every answer is recorded in `seen`. Fails on a 5xx or a
    status code the spec does not document."""

    @given(case=operation.as_strategy())
    @settings(
        max_examples=40 if operation.label in HOOKS else 12,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        database=None,
    )
    def check(case) -> None:
        response = case.call_and_validate(
            base_url=base,
            headers={"Authorization": f"Bearer {token}"},
            checks=[not_a_server_error, status_code_conformance],
        )
        try:
            payload = response.json()
        except ValueError:
            payload = None
        seen.append((response.status_code, payload))

    check()


def test_no_input_makes_the_api_fail_with_5xx(service: tuple[str, str]) -> None:
    # Schemathesis' pytest plugin does not load under this pytest, so its Python API drives
    # Hypothesis directly: every operation in the spec, a bounded number of generated cases.
    base, token = service
    schema = schemathesis.openapi.from_url(f"{base}/openapi.json")
    failures: list[str] = []
    answers: dict[str, list[tuple[int, Any]]] = {}
    for result in schema.get_all_operations():
        operation = result.ok()
        try:
            fuzz(operation, base, token, answers.setdefault(operation.label, []))
        except Exception as err:
            failures.append(f"{operation.label}: {str(err)[:500]}")
    assert len(answers) >= 20
    assert not failures, "\n".join(failures)
    for hook in HOOKS:
        assert hook in answers, hook
        codes = [code for code, _ in answers[hook]]
        assert any(code != 401 for code in codes), (hook, codes)
        # Some generated notification got past the parser: alerts acted on, one by one.
        acted = [p for code, p in answers[hook] if code == 200 and p and p.get("outcomes")]
        assert acted, (hook, codes)


def test_the_fuzzed_spec_covers_the_contract(service: tuple[str, str]) -> None:
    import httpx

    base, _ = service
    paths = httpx.get(f"{base}/openapi.json").json()["paths"]
    for required in (
        "/health",
        "/v1/anomalies",
        "/v1/accounts/{user_id}/lock",
        "/v1/accounts/{user_id}/unlock",
        "/v1/transactions/{tx_id}/block",
        "/v1/transactions/{tx_id}/release",
        "/v1/audit",
        "/v1/hooks/grafana",
        "/v1/hooks/watcher",
    ):
        assert required in paths, required


def test_an_oversized_chunked_upload_is_refused_with_413(service: tuple[str, str]) -> None:
    import httpx

    base, token = service

    def body(kib: int):
        yield b'{"reason": "'
        for _ in range(kib):
            yield b"x" * 1024
        yield b'"}'

    headers = {"Authorization": f"Bearer {token}", "content-type": "application/json"}
    # Over server.max_body_bytes (64 KiB) for the API, over hooks.max_body_bytes (4 MiB) for
    # the hooks, sent chunked: no Content-Length to refuse it by.
    for path, kib, setting in (
        ("/v1/accounts/1/lock", 100, "server.max_body_bytes"),
        ("/v1/hooks/grafana", 4200, "hooks.max_body_bytes"),
        ("/v1/hooks/watcher", 4200, "hooks.max_body_bytes"),
    ):
        response = httpx.post(f"{base}{path}", content=body(kib), headers=headers)
        assert response.status_code == 413, (path, response.text)
        assert "larger than" in response.json()["error"]
        assert setting in response.json()["error"]


def test_a_405_lists_the_methods_the_spec_documents(service: tuple[str, str]) -> None:
    import httpx

    base, _ = service
    paths = httpx.get(f"{base}/openapi.json").json()["paths"]
    for path, operations in paths.items():
        documented = {method.upper() for method in operations}
        wrong = next(m for m in ("DELETE", "PATCH", "PUT", "POST") if m not in documented)
        url = base + path.replace("{decision}", "approve").replace("{", "").replace("}", "")
        response = httpx.request(wrong, url)
        assert response.status_code == 405, (wrong, path, response.text)
        assert response.headers["allow"] == ", ".join(sorted(documented)), path
