"""Results from Elasticsearch: configuration, and a cluster that does not answer is a 503
with one clear line (never a stack trace). No server is needed: nothing listens on the port."""

from __future__ import annotations

import re
import socket
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from fraudwatch.errors import UserError
from fraudwatch.intervention.api import create_app
from fraudwatch.intervention.auth import create_token
from fraudwatch.intervention.config import load_settings
from fraudwatch.intervention.elasticsearch_results import ElasticsearchResults
from fraudwatch.intervention.results import ScoredResults
from fraudwatch.intervention.results_source import open_results
from fraudwatch.intervention.stores.sqlite import SqliteStore


def closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_results_come_from_elasticsearch_when_its_url_is_set(tmp_path: Path) -> None:
    env = {"FRAUDWATCH_ELASTICSEARCH_URL": "http://127.0.0.1:9200"}
    settings = load_settings(tmp_path / "absent.toml", env)
    reader = open_results(settings)
    assert isinstance(reader, ElasticsearchResults)
    # the indices `fraudwatch publish` writes, unless configured otherwise
    assert (reader.users_index, reader.tx_index) == ("fraudwatch-users", "fraudwatch-transactions")
    assert "Elasticsearch http://127.0.0.1:9200" in reader.describe()
    reader.close()


def test_index_names_and_credentials_come_from_the_file_or_environment(tmp_path: Path) -> None:
    config = tmp_path / "intervention.toml"
    config.write_text(
        '[results]\nelasticsearch_url = "https://es.example:9200"\n'
        'elasticsearch_users_index = "fw-users"\nelasticsearch_username = "reader"\n'
    )
    env = {"FRAUDWATCH_ES_PASSWORD": "from-the-env", "FRAUDWATCH_ES_TRANSACTIONS_INDEX": "fw-tx"}
    es = load_settings(config, env).elasticsearch
    assert (es.url, es.users_index, es.transactions_index) == (
        "https://es.example:9200",
        "fw-users",
        "fw-tx",
    )
    assert (es.username, es.password, es.api_key) == ("reader", "from-the-env", "")
    assert "from-the-env" not in repr(es)  # secrets stay out of logs
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "es-api-key").write_text("key-from-file\n")
    keyed = load_settings(
        tmp_path / "absent.toml",
        {"FRAUDWATCH_ELASTICSEARCH_URL": "http://h:9200", "FRAUDWATCH_SECRETS_DIR": str(secrets)},
    ).elasticsearch
    assert keyed.api_key == "key-from-file" and keyed.username == ""


def test_no_default_credentials(tmp_path: Path) -> None:
    es = load_settings(
        tmp_path / "absent.toml", {"FRAUDWATCH_ELASTICSEARCH_URL": "http://h:9200"}
    ).elasticsearch
    assert (es.username, es.password, es.api_key) == ("", "", "")


@pytest.mark.parametrize(
    ("env", "words"),
    [
        ({"FRAUDWATCH_ELASTICSEARCH_URL": "es:9200"}, "must start with http://"),
        (
            {"FRAUDWATCH_ELASTICSEARCH_URL": "http://h:9200", "FRAUDWATCH_ES_USERNAME": "u"},
            "FRAUDWATCH_ES_PASSWORD",
        ),
        (
            {"FRAUDWATCH_ELASTICSEARCH_URL": "http://h:9200", "FRAUDWATCH_ES_USERS_INDEX": "A*"},
            "results.elasticsearch_users_index",
        ),
        (
            {"FRAUDWATCH_ELASTICSEARCH_URL": "http://h:9200", "FRAUDWATCH_ES_CA_CERT": "/nope"},
            "results.elasticsearch_ca_cert",
        ),
        (
            {"FRAUDWATCH_ELASTICSEARCH_URL": "http://h:9200", "FRAUDWATCH_ES_TIMEOUT_SECONDS": "0"},
            "results.elasticsearch_timeout_seconds",
        ),
    ],
)
def test_bad_elasticsearch_settings_name_the_key(
    tmp_path: Path, env: dict[str, str], words: str
) -> None:
    with pytest.raises(UserError) as err:
        load_settings(tmp_path / "absent.toml", env)
    assert words in str(err.value) and "\n" not in str(err.value)


@pytest.fixture
def unreachable(tmp_path: Path) -> tuple[TestClient, dict[str, str], SqliteStore]:
    url = f"http://127.0.0.1:{closed_port()}"
    settings = load_settings(
        tmp_path / "absent.toml",
        {"FRAUDWATCH_ELASTICSEARCH_URL": url, "FRAUDWATCH_ES_TIMEOUT_SECONDS": "5"},
    )
    store = SqliteStore(tmp_path / "state.sqlite3")
    client = TestClient(
        create_app(settings, store, open_results(settings)), raise_server_exceptions=False
    )
    token, _ = create_token(store, "admin")
    return client, {"Authorization": f"Bearer {token}"}, store


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v1/anomalies"),
        ("GET", "/v1/anomalies?level=transactions&hour=3"),
        ("GET", "/v1/users/1"),
        ("GET", "/v1/users/1/interventions"),
        ("GET", "/v1/transactions/100"),
        ("POST", "/v1/accounts/1/lock"),
        ("POST", "/v1/transactions/100/block"),
    ],
)
def test_elasticsearch_down_is_a_503_with_a_clear_message(
    unreachable: tuple[TestClient, dict[str, str], SqliteStore], method: str, path: str
) -> None:
    client, auth, store = unreachable
    body = {"reason": "test"} if method == "POST" else None
    response = client.request(method, path, headers=auth, json=body)
    assert response.status_code == 503, response.text
    message = response.json()["error"]
    assert "Elasticsearch at http://127.0.0.1:" in message and "did not answer" in message
    assert "results.elasticsearch_url" in message
    assert "Traceback" not in response.text and "\n" not in message
    assert response.headers["retry-after"] == "30"
    assert store.get_state("account", "1") == {}  # nothing was done on a guess


def test_hooks_and_the_admin_page_answer_503_too(
    unreachable: tuple[TestClient, dict[str, str], SqliteStore],
) -> None:
    client, auth, store = unreachable
    alert = {"alerts": [{"status": "firing", "labels": {"user_id": "1", "ensemble_score": "0.99"}}]}
    hooked = client.post("/v1/hooks/grafana", json=alert, headers=auth)
    assert hooked.status_code == 503 and "did not answer" in hooked.json()["error"]
    assert store.get_state("account", "1") == {}
    assert client.get("/health").status_code == 200  # liveness does not depend on results
    token, _ = create_token(store, "analyst")
    form = client.get("/admin/login").text
    csrf = re.search(r'name="csrf" value="([^"]+)"', form).group(1)  # type: ignore[union-attr]
    signed_in = client.post(
        "/admin/login", data={"token": token, "csrf": csrf}, follow_redirects=False
    )
    assert signed_in.status_code == 303  # signing in needs the store, not the results
    page = client.get("/admin")
    assert page.status_code == 503 and "did not answer" in page.json()["error"]


def test_the_parquet_reader_stays_the_default(tmp_path: Path, scored_dir: Path) -> None:
    settings = load_settings(tmp_path / "absent.toml", {"FRAUDWATCH_SCORED": str(scored_dir)})
    assert isinstance(open_results(settings), ScoredResults)
